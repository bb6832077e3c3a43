function Get-MailshiftConnection {
    <#
    .SYNOPSIS
    Shows which Mailshift service the cmdlets use, and where that setting came from.

    .DESCRIPTION
    Writes the connection the migration cmdlets would use now: from Connect-Mailshift or an
    Exchange prelude redirected by Mailshift.ExchangePreludes, else from the environment variables, else from the credential file.
    Writes nothing when none is configured. The password is not shown.

    .EXAMPLE
    Get-MailshiftConnection

    Shows the service address, the user name and the source of the settings.

    .EXAMPLE
    if (-not (Get-MailshiftConnection)) { Connect-Mailshift -Uri https://mailshift.contoso.edu:5986 -Credential (Get-Credential) }

    Connects only when nothing is configured yet.

    .LINK
    Connect-Mailshift
    #>
    [CmdletBinding()]
    [OutputType('Mailshift.Connection')]
    param()

    $settings = GetMailshiftSettings -Cmdlet $PSCmdlet
    if (-not $settings.Uri -or $null -eq $settings.Credential) {
        return
    }
    $connection = NewMailshiftConnection -Cmdlet $PSCmdlet -Uri $settings.Uri -Credential $settings.Credential -SkipCertificateCheck:$settings.SkipCertificateCheck -Source $settings.Source
    $shown = $connection | Select-Object -Property @('Uri', 'UserName', 'SkipCertificateCheck', 'Source')
    $shown.PSObject.TypeNames.Insert(0, 'Mailshift.Connection')
    $shown
}
