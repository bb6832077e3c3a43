function Disconnect-ExchangeOnline {
    <#
    .SYNOPSIS
    Ends a Mailshift connection made by a redirected Exchange prelude.

    .DESCRIPTION
    When the Exchange prelude redirection is on, Disconnect-ExchangeOnline forgets the
    session's Mailshift connection (as Disconnect-Mailshift does); -Confirm:$false and the other
    parameters of the Exchange Online command are accepted. Otherwise the call goes to the
    ExchangeOnlineManagement module unchanged, if it is installed.

    .EXAMPLE
    Disconnect-ExchangeOnline -Confirm:$false

    Ends the connection at the end of a script.

    .EXAMPLE
    Disconnect-ExchangeOnline

    Same, without prompting: Mailshift has nothing to confirm here.

    .LINK
    Connect-ExchangeOnline
    #>
    if (TestMailshiftPreludeBinding) {
        InvokeMailshiftModule -ScriptBlock { $script:MailshiftConnection = $null }
        return
    }
    if (-not (Get-Module -ListAvailable -Name 'ExchangeOnlineManagement')) {
        return
    }
    ExchangeOnlineManagement\Disconnect-ExchangeOnline @args
}
