# Connection state: which Mailshift service the cmdlets talk to, and as whom.
#
# Settings come, in this order, from Connect-Mailshift (or an Exchange prelude redirected by the
# companion module Mailshift.ExchangePreludes) in this session, the environment (MAILSHIFT_URI,
# MAILSHIFT_USER, MAILSHIFT_PASSWORD, MAILSHIFT_SKIP_CERTIFICATE_CHECK) and a credential file
# written by Connect-Mailshift -SaveCredential (MAILSHIFT_CREDENTIAL_FILE, or connection.clixml
# under the user's application-data folder). The credential file holds a connection only: a
# BindExchangePreludes entry written by older versions is ignored, so saved credentials never
# redirect PowerShell's or Exchange Online's commands. Credentials never travel in clear text: plain http is
# accepted only for a service on this machine (loopback).

$script:MailshiftConnection = $null
$script:MailshiftApiPath = '/api/v1'

function TestMailshiftTrue {
    param([object]$Value)

    if ($null -eq $Value) {
        return $false
    }
    if ($Value -is [bool]) {
        return $Value
    }
    return @('1', 'true', 'yes', 'on', '$true') -contains ([string]$Value).Trim()
}

function TestMailshiftLoopbackHost {
    param(
        [Parameter(Mandatory = $true)]
        [string]
        $HostName
    )

    $name = $HostName.Trim('[', ']').ToLowerInvariant()
    if ($name -eq 'localhost' -or $name.EndsWith('.localhost')) {
        return $true
    }
    $address = $null
    if ([System.Net.IPAddress]::TryParse($name, [ref]$address)) {
        return [System.Net.IPAddress]::IsLoopback($address)
    }
    return $false
}

function GetMailshiftConnectionFilePath {
    if ($env:MAILSHIFT_CREDENTIAL_FILE) {
        return $env:MAILSHIFT_CREDENTIAL_FILE
    }
    $folder = [System.Environment]::GetFolderPath('ApplicationData')
    if (-not $folder) {
        $folder = $HOME
    }
    return Join-Path (Join-Path $folder 'Mailshift') 'connection.clixml'
}

function NewMailshiftCredential {
    param(
        [Parameter(Mandatory = $true)]
        [string]
        $UserName,

        [Parameter(Mandatory = $true)]
        [AllowEmptyString()]
        [string]
        $Password
    )

    $secure = New-Object System.Security.SecureString
    foreach ($character in $Password.ToCharArray()) {
        $secure.AppendChar($character)
    }
    $secure.MakeReadOnly()
    return New-Object System.Management.Automation.PSCredential -ArgumentList $UserName, $secure
}

function GetMailshiftSettings {
    # The merged settings; any field may be $null when nothing configures it.
    param(
        [System.Management.Automation.PSCmdlet]
        $Cmdlet
    )

    $settings = @{
        Uri                  = $null
        Credential           = $null
        SkipCertificateCheck = $false
        Source               = $null
    }

    $path = GetMailshiftConnectionFilePath
    if (Test-Path -LiteralPath $path -PathType Leaf) {
        try {
            $saved = Import-Clixml -LiteralPath $path
        }
        catch {
            $record = NewMailshiftErrorRecord -Message ("The Mailshift credential file '{0}' could not be read: {1} Write it again with Connect-Mailshift -SaveCredential." -f $path, $_.Exception.Message) -ErrorId 'MailshiftCredentialFileUnreadable' -Category 'ReadError' -Target $path -InnerException $_.Exception
            StopMailshiftCommand -Cmdlet $Cmdlet -ErrorRecord $record
        }
        if ($saved -is [System.Collections.IDictionary]) {
            if ($saved['Uri']) { $settings.Uri = [string]$saved['Uri'] }
            if ($saved['Credential'] -is [System.Management.Automation.PSCredential]) { $settings.Credential = $saved['Credential'] }
            $settings.SkipCertificateCheck = TestMailshiftTrue $saved['SkipCertificateCheck']
            $settings.Source = 'CredentialFile'
        }
    }

    if ($env:MAILSHIFT_URI) {
        $settings.Uri = $env:MAILSHIFT_URI
        $settings.Source = 'Environment'
    }
    if ($env:MAILSHIFT_USER) {
        $password = ''
        if ($null -ne $env:MAILSHIFT_PASSWORD) {
            $password = $env:MAILSHIFT_PASSWORD
        }
        $settings.Credential = NewMailshiftCredential -UserName $env:MAILSHIFT_USER -Password $password
        $settings.Source = 'Environment'
    }
    if ($null -ne $env:MAILSHIFT_SKIP_CERTIFICATE_CHECK) {
        $settings.SkipCertificateCheck = TestMailshiftTrue $env:MAILSHIFT_SKIP_CERTIFICATE_CHECK
    }

    $current = $script:MailshiftConnection
    if ($null -ne $current) {
        $settings.Uri = $current.Uri
        $settings.Credential = $current.Credential
        $settings.SkipCertificateCheck = $current.SkipCertificateCheck
        $settings.Source = $current.Source
    }
    return $settings
}

function NewMailshiftConnection {
    param(
        [System.Management.Automation.PSCmdlet]
        $Cmdlet,

        [Parameter(Mandatory = $true)]
        [string]
        $Uri,

        [Parameter(Mandatory = $true)]
        [System.Management.Automation.PSCredential]
        $Credential,

        [switch]
        $SkipCertificateCheck,

        [string]
        $Source = 'Connect-Mailshift'
    )

    $parsed = $null
    $valid = [System.Uri]::TryCreate($Uri.Trim(), [System.UriKind]::Absolute, [ref]$parsed)
    if (-not $valid -or ($parsed.Scheme -ne 'http' -and $parsed.Scheme -ne 'https')) {
        $record = NewMailshiftErrorRecord -Message ("'{0}' is not the address of a Mailshift service. Give one such as https://mailshift.contoso.edu:5986." -f $Uri) -ErrorId 'MailshiftInvalidUri' -Category 'InvalidArgument' -Target $Uri
        StopMailshiftCommand -Cmdlet $Cmdlet -ErrorRecord $record
    }
    if ($parsed.Scheme -eq 'http' -and -not (TestMailshiftLoopbackHost -HostName $parsed.Host)) {
        $record = NewMailshiftErrorRecord -Message ("Refusing to send credentials in clear text to {0}: plain http is allowed only for a Mailshift service on this computer. Use https://{1}:5986 (add -SkipCertificateCheck, or MAILSHIFT_SKIP_CERTIFICATE_CHECK=1, if the service has a self-signed certificate)." -f $parsed.GetLeftPart([System.UriPartial]::Authority), $parsed.Host) -ErrorId 'MailshiftInsecureUri' -Category 'SecurityError' -Target $Uri
        StopMailshiftCommand -Cmdlet $Cmdlet -ErrorRecord $record
    }

    $base = $parsed.GetLeftPart([System.UriPartial]::Path).TrimEnd('/')
    if ($base.EndsWith($script:MailshiftApiPath, [System.StringComparison]::OrdinalIgnoreCase)) {
        $base = $base.Substring(0, $base.Length - $script:MailshiftApiPath.Length)
    }

    $connection = [pscustomobject]@{
        Uri                  = $base
        ApiUri               = $base + $script:MailshiftApiPath
        HostName             = $parsed.Host
        UserName             = $Credential.UserName
        Credential           = $Credential
        SkipCertificateCheck = [bool]$SkipCertificateCheck
        Source               = $Source
        ConnectedAt          = [System.DateTime]::Now
    }
    $connection.PSObject.TypeNames.Insert(0, 'Mailshift.Connection')
    return $connection
}

function GetMailshiftConnection {
    # The connection the cmdlets use; a terminating error that says how to connect when there is none.
    param(
        [System.Management.Automation.PSCmdlet]
        $Cmdlet
    )

    if ($null -ne $script:MailshiftConnection) {
        return $script:MailshiftConnection
    }
    $settings = GetMailshiftSettings -Cmdlet $Cmdlet
    if (-not $settings.Uri -or $null -eq $settings.Credential) {
        $missing = @()
        if (-not $settings.Uri) { $missing += 'MAILSHIFT_URI' }
        if ($null -eq $settings.Credential) { $missing += 'MAILSHIFT_USER and MAILSHIFT_PASSWORD' }
        $record = NewMailshiftErrorRecord -Message ("Not connected to a Mailshift service. Run Connect-Mailshift -Uri https://<server>:5986 -Credential (Get-Credential), or set {0} (see Get-Help about_Mailshift)." -f ($missing -join ' and ')) -ErrorId 'MailshiftNotConnected' -Category 'ConnectionError'
        StopMailshiftCommand -Cmdlet $Cmdlet -ErrorRecord $record
    }
    return NewMailshiftConnection -Cmdlet $Cmdlet -Uri $settings.Uri -Credential $settings.Credential -SkipCertificateCheck:$settings.SkipCertificateCheck -Source $settings.Source
}

function TestMailshiftConnection {
    # Proves the address and the credentials with one small authenticated request.
    param(
        [System.Management.Automation.PSCmdlet]
        $Cmdlet,

        [Parameter(Mandatory = $true)]
        [object]
        $Connection
    )

    $null = InvokeMailshiftRequest -Cmdlet $Cmdlet -Connection $Connection -Method 'GET' -Path '/cmdlets/Get-MigrationStatus'
}

function ConnectMailshiftPrelude {
    # Connects an Exchange prelude redirected by Mailshift.ExchangePreludes (which calls this
    # inside the module): the configured service and credentials win; the prelude's own
    # -ConnectionUri and -Credential fill in what is not configured.
    param(
        [System.Management.Automation.PSCmdlet]
        $Cmdlet,

        [object]
        $ConnectionUri,

        [object]
        $Credential,

        [Parameter(Mandatory = $true)]
        [string]
        $Source
    )

    $settings = GetMailshiftSettings -Cmdlet $Cmdlet
    $uri = $settings.Uri
    if (-not $uri -and $ConnectionUri) {
        $given = $null
        if ([System.Uri]::TryCreate([string]$ConnectionUri, [System.UriKind]::Absolute, [ref]$given)) {
            $uri = $given.GetLeftPart([System.UriPartial]::Authority)
        }
    }
    $user = $settings.Credential
    if ($null -eq $user -and $Credential -is [System.Management.Automation.PSCredential]) {
        $user = $Credential
    }
    if (-not $uri -or $null -eq $user) {
        $record = NewMailshiftErrorRecord -Message ("{0} is bound to Mailshift, but the service address or the credentials are missing: set MAILSHIFT_URI (and MAILSHIFT_USER/MAILSHIFT_PASSWORD, or pass -Credential)." -f $Source) -ErrorId 'MailshiftNotConfigured' -Category 'ConnectionError'
        StopMailshiftCommand -Cmdlet $Cmdlet -ErrorRecord $record
    }
    $connection = NewMailshiftConnection -Cmdlet $Cmdlet -Uri $uri -Credential $user -SkipCertificateCheck:$settings.SkipCertificateCheck -Source $Source
    TestMailshiftConnection -Cmdlet $Cmdlet -Connection $connection
    $script:MailshiftConnection = $connection
    return $connection
}
