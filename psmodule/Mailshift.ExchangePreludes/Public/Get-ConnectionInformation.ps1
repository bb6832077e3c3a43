function Get-ConnectionInformation {
    <#
    .SYNOPSIS
    Describes the Mailshift connection the way Exchange Online describes its connections.

    .DESCRIPTION
    When the Exchange prelude redirection is on, writes one object for the current Mailshift
    connection with the properties scripts check (State, TokenStatus, UserPrincipalName,
    ConnectionUri, Name, Id), or nothing when there is no connection, so a script's
    "if (-not (Get-ConnectionInformation)) { Connect-ExchangeOnline }" works. Otherwise the call
    goes to the ExchangeOnlineManagement module unchanged, if it is installed.

    .EXAMPLE
    Get-ConnectionInformation | Select-Object State, UserPrincipalName

    Shows whether the session is connected, and as whom.

    .EXAMPLE
    if (-not (Get-ConnectionInformation)) { Connect-ExchangeOnline -ShowBanner:$false }

    Connects only once per session.

    .LINK
    Connect-ExchangeOnline
    #>
    if (TestMailshiftPreludeBinding) {
        $connection = InvokeMailshiftModule -ScriptBlock { $script:MailshiftConnection }
        if ($null -eq $connection) {
            return
        }
        $information = [pscustomobject]@{
            ConnectionId       = 'Mailshift'
            State              = 'Connected'
            Id                 = 1
            Name               = 'Mailshift'
            UserPrincipalName  = $connection.UserName
            ConnectionUri      = $connection.Uri
            TokenStatus        = 'Active'
            ConnectionUsedForInbuiltCmdlets = $true
            IsEopSession       = $false
            ModulePrefix       = ''
        }
        $information.PSObject.TypeNames.Insert(0, 'Mailshift.ConnectionInformation')
        return $information
    }
    if (-not (Get-Module -ListAvailable -Name 'ExchangeOnlineManagement')) {
        return
    }
    ExchangeOnlineManagement\Get-ConnectionInformation @args
}
