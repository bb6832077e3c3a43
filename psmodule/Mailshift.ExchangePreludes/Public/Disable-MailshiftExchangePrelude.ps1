function Disable-MailshiftExchangePrelude {
    <#
    .SYNOPSIS
    Lets the Exchange connection commands reach Exchange again in this session.

    .DESCRIPTION
    Turns the redirection of this module off for the rest of the session, whatever
    MAILSHIFT_BIND_EXCHANGE or a saved choice say: New-PSSession, Import-PSSession,
    Remove-PSSession and the Exchange Online connection commands then go to PowerShell's and
    the ExchangeOnlineManagement module's own commands. A connection the preludes made to
    Mailshift stays usable by the Mailshift module's cmdlets (Disconnect-Mailshift ends it).
    With -RemoveSaved, the choice saved by Enable-MailshiftExchangePrelude -Save is deleted too.
    Remove-Module Mailshift.ExchangePreludes removes the functions themselves.

    .PARAMETER RemoveSaved
    Also deletes the file written by Enable-MailshiftExchangePrelude -Save.

    .EXAMPLE
    Disable-MailshiftExchangePrelude

    Stops the redirection in this session.

    .EXAMPLE
    Disable-MailshiftExchangePrelude -RemoveSaved

    Stops it in this session and in later ones.

    .LINK
    Enable-MailshiftExchangePrelude
    #>
    [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'Low')]
    param(
        [switch]
        $RemoveSaved
    )

    $script:MailshiftPreludesEnabled = $false
    if ($RemoveSaved) {
        $path = GetMailshiftPreludesFilePath
        if ((Test-Path -LiteralPath $path -PathType Leaf) -and $PSCmdlet.ShouldProcess($path, 'Remove the saved Exchange prelude redirection')) {
            Remove-Item -LiteralPath $path -Force
        }
    }
    Write-Verbose 'Exchange connection preludes in this session go to Exchange again.'
}
