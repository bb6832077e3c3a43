function Connect-Mailshift {
    <#
    .SYNOPSIS
    Connects this PowerShell session to a Mailshift service.

    .DESCRIPTION
    Remembers the address of a Mailshift service and the administrator credentials to use, after
    checking both with one request. Every migration cmdlet of the module (New-MigrationBatch,
    Get-MigrationBatch, ...) then runs on that service.

    Scripts that should run without a Connect-Mailshift line can instead rely on the environment
    variables MAILSHIFT_URI, MAILSHIFT_USER and MAILSHIFT_PASSWORD, or on the credential file
    written by -SaveCredential. Credentials are never sent in clear text: an http:// address is
    accepted only for a service on this computer; use https:// for any other host.

    This module never changes what PowerShell's own commands do. To let the Exchange connection
    lines of existing scripts (New-PSSession -ConfigurationName Microsoft.Exchange,
    Connect-ExchangeOnline) reach Mailshift, import the companion module
    Mailshift.ExchangePreludes and run Enable-MailshiftExchangePrelude (see
    about_Mailshift_ExchangePreludes).

    .PARAMETER Uri
    The address of the service, such as https://mailshift.contoso.edu:5986 (http://127.0.0.1:5985
    for a service on this computer).

    .PARAMETER Credential
    A Mailshift administrator account (created on the server with "mailshift admin add").

    .PARAMETER SkipCertificateCheck
    Accepts the service's certificate even when it is self-signed or does not match the name.
    On Windows PowerShell 5.1 this applies to the service's host only.

    .PARAMETER SaveCredential
    Also writes the address and credentials to the credential file (MAILSHIFT_CREDENTIAL_FILE,
    or Mailshift\connection.clixml in the application-data folder) for later sessions. On Windows
    the password is protected for the current user; elsewhere keep the file private.

    .PARAMETER PassThru
    Writes the connection object.

    .EXAMPLE
    Connect-Mailshift -Uri https://mailshift.contoso.edu:5986 -Credential (Get-Credential)

    Asks for the administrator's name and password and connects to the service.

    .EXAMPLE
    Connect-Mailshift -Uri https://mailshift.contoso.edu:5986 -Credential admin -SkipCertificateCheck -SaveCredential

    Connects to a service with a self-signed certificate and saves the connection, so later
    sessions and scheduled scripts need no connect line.

    .LINK
    about_Mailshift
    #>
    [CmdletBinding()]
    [OutputType('Mailshift.Connection')]
    param(
        [Parameter(Mandatory = $true, Position = 0)]
        [string]
        $Uri,

        [Parameter(Mandatory = $true, Position = 1)]
        [System.Management.Automation.PSCredential]
        [System.Management.Automation.Credential()]
        $Credential,

        [switch]
        $SkipCertificateCheck,

        [switch]
        $SaveCredential,

        [switch]
        $PassThru
    )

    $connection = NewMailshiftConnection -Cmdlet $PSCmdlet -Uri $Uri -Credential $Credential -SkipCertificateCheck:$SkipCertificateCheck -Source 'Connect-Mailshift'
    TestMailshiftConnection -Cmdlet $PSCmdlet -Connection $connection
    $script:MailshiftConnection = $connection
    if ($SaveCredential) {
        $path = GetMailshiftConnectionFilePath
        $folder = Split-Path -Path $path -Parent
        if ($folder -and -not (Test-Path -LiteralPath $folder)) {
            $null = New-Item -ItemType Directory -Path $folder -Force
        }
        $saved = @{
            Uri                  = $connection.Uri
            Credential           = $Credential
            SkipCertificateCheck = [bool]$SkipCertificateCheck
        }
        Export-Clixml -LiteralPath $path -InputObject $saved -Force
        Write-Verbose ("Saved the Mailshift connection to {0}." -f $path)
    }
    if ($PassThru) {
        $connection
    }
}
