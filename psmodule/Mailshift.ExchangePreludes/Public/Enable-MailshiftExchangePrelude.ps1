function Enable-MailshiftExchangePrelude {
    <#
    .SYNOPSIS
    Sends the Exchange connection lines of scripts in this session to Mailshift.

    .DESCRIPTION
    Turns on the redirection of this module: New-PSSession -ConfigurationName
    Microsoft.Exchange (with Import-PSSession and Remove-PSSession), Connect-ExchangeOnline,
    Get-ConnectionInformation and Disconnect-ExchangeOnline then connect to the Mailshift
    service configured for the Mailshift module (Connect-Mailshift, MAILSHIFT_URI and
    MAILSHIFT_USER/MAILSHIFT_PASSWORD, or the saved connection) instead of Exchange, so a script
    written for Exchange runs unchanged. Each redirected command writes a warning naming the
    Mailshift service it talks to. New-PSSession calls for any other configuration still go to
    PowerShell's own command.

    The redirection lasts until the session ends or Disable-MailshiftExchangePrelude is run.
    With -Save it also applies to every later session that imports Mailshift.ExchangePreludes,
    until Disable-MailshiftExchangePrelude -RemoveSaved.

    .PARAMETER Save
    Also records the choice in a file (MAILSHIFT_PRELUDES_FILE, or
    Mailshift\exchange-preludes.txt in the application-data folder), so later sessions that
    import this module redirect the preludes too.

    .EXAMPLE
    Import-Module Mailshift.ExchangePreludes; Enable-MailshiftExchangePrelude; .\Migrate.ps1

    Runs an Exchange migration script on Mailshift in this session only.

    .EXAMPLE
    Enable-MailshiftExchangePrelude -Save

    Redirects the preludes in this session and in later sessions that import the module (for
    scheduled scripts); each redirected prelude still prints which service it talks to.

    .LINK
    Disable-MailshiftExchangePrelude

    .LINK
    about_Mailshift_ExchangePreludes
    #>
    [CmdletBinding()]
    param(
        [switch]
        $Save
    )

    $script:MailshiftPreludesEnabled = $true
    $uri = InvokeMailshiftModule -ScriptBlock { (GetMailshiftSettings).Uri }
    $service = 'the Mailshift service configured with Connect-Mailshift or MAILSHIFT_URI (none is configured yet)'
    if ($uri) {
        $service = 'the Mailshift service at {0}' -f $uri
    }
    $scope = 'in this session'
    if ($Save) {
        $path = GetMailshiftPreludesFilePath
        $folder = Split-Path -Path $path -Parent
        if ($folder -and -not (Test-Path -LiteralPath $folder)) {
            $null = New-Item -ItemType Directory -Path $folder -Force
        }
        $note = 'Written by Enable-MailshiftExchangePrelude -Save: sessions that import Mailshift.ExchangePreludes send Exchange connection preludes to Mailshift. Delete this file, or run Disable-MailshiftExchangePrelude -RemoveSaved, to stop.'
        [System.IO.File]::WriteAllText($path, $note + [System.Environment]::NewLine)
        $scope = 'in this session and in later sessions that import Mailshift.ExchangePreludes (saved in {0})' -f $path
    }
    Write-Warning ("Exchange connection preludes (New-PSSession -ConfigurationName Microsoft.Exchange, Import-PSSession, Connect-ExchangeOnline, Get-ConnectionInformation, Disconnect-ExchangeOnline) now go to {0} {1}, not to Exchange." -f $service, $scope)
}
