# The request helper: every call to the Mailshift REST API goes through InvokeMailshiftRequest.
#
# Request:  <Method> <service>/api/v1<Path>
#           Authorization: Basic base64(UTF-8 "user:password")   (sent with the first request)
#           Accept: application/json
#           Content-Type: application/json; charset=utf-8        (when there is a body)
#           body: UTF-8 JSON, e.g. {"parameters": {"Name": "Batch1", "CSVData": "<base64>", "AutoStart": true}}
# Answer:   200 {"output": [...], "errors": [...], "warnings": [...]}; 4xx {"error": {...}}.

$script:MailshiftJsonContentType = 'application/json; charset=utf-8'
$script:MailshiftInvokePath = '/cmdlets/{0}/invoke'

function GetMailshiftAuthorization {
    param(
        [Parameter(Mandatory = $true)]
        [System.Management.Automation.PSCredential]
        $Credential
    )

    $user = $Credential.UserName
    if ($user.StartsWith('\')) {
        # Windows PowerShell's credential prompt may prefix a name typed without a domain with "\".
        $user = $user.Substring(1)
    }
    $pair = $user + ':' + $Credential.GetNetworkCredential().Password
    return 'Basic ' + [System.Convert]::ToBase64String([System.Text.Encoding]::UTF8.GetBytes($pair))
}

function ReadMailshiftResponseText {
    param([object]$Response)

    if ($null -eq $Response) {
        return ''
    }
    if ($Response.PSObject.Properties['RawContentStream'] -and $null -ne $Response.RawContentStream) {
        return [System.Text.Encoding]::UTF8.GetString($Response.RawContentStream.ToArray())
    }
    return [string]$Response.Content
}

function ReadMailshiftErrorText {
    # The body of a failed request: from ErrorDetails (PowerShell 6 and 7, often 5.1 too) or
    # from the WebException's response stream (Windows PowerShell 5.1).
    param([object]$Failure)

    if ($null -ne $Failure.ErrorDetails -and $Failure.ErrorDetails.Message) {
        return $Failure.ErrorDetails.Message
    }
    $webResponse = $Failure.Exception.Response
    if ($webResponse -is [System.Net.WebResponse]) {
        try {
            $stream = $webResponse.GetResponseStream()
            if ($stream.CanSeek) {
                $null = $stream.Seek(0, [System.IO.SeekOrigin]::Begin)
            }
            $reader = New-Object System.IO.StreamReader -ArgumentList $stream, ([System.Text.Encoding]::UTF8)
            try {
                return $reader.ReadToEnd()
            }
            finally {
                $reader.Dispose()
            }
        }
        catch {
            return ''
        }
    }
    return ''
}

function InvokeMailshiftRequest {
    param(
        [System.Management.Automation.PSCmdlet]
        $Cmdlet,

        [Parameter(Mandatory = $true)]
        [object]
        $Connection,

        [Parameter(Mandatory = $true)]
        [ValidateSet('GET', 'POST')]
        [string]
        $Method,

        [Parameter(Mandatory = $true)]
        [string]
        $Path,

        [object]
        $Body
    )

    EnableMailshiftTransport -Connection $Connection
    $request = @{
        Uri             = $Connection.ApiUri + $Path
        Method          = $Method
        Headers         = @{
            Authorization = GetMailshiftAuthorization -Credential $Connection.Credential
            Accept        = 'application/json'
        }
        UseBasicParsing = $true
        ErrorAction     = 'Stop'
    }
    if ($null -ne $Body) {
        $json = ConvertTo-Json -InputObject $Body -Depth 32 -Compress
        $request['Body'] = [System.Text.Encoding]::UTF8.GetBytes($json)
        $request['ContentType'] = $script:MailshiftJsonContentType
    }
    AddMailshiftTransportParameters -Request $request -Connection $Connection

    # Windows PowerShell 5.1 redraws a progress bar for every chunk read, which is very slow.
    $ProgressPreference = 'SilentlyContinue'
    $status = 0
    $text = ''
    $failure = $null
    try {
        $response = Invoke-WebRequest @request
        $status = [int]$response.StatusCode
        $text = ReadMailshiftResponseText -Response $response
    }
    catch {
        $failure = $_
    }

    if ($null -ne $failure) {
        $failedResponse = $null
        if ($failure.Exception.PSObject.Properties['Response']) {
            $failedResponse = $failure.Exception.Response
        }
        if ($null -eq $failedResponse) {
            $reason = $failure.Exception.Message
            if ($reason -match 'trust|certificate|SSL|TLS') {
                $reason += ' If the service uses a self-signed certificate, connect with -SkipCertificateCheck (or set MAILSHIFT_SKIP_CERTIFICATE_CHECK=1).'
            }
            $record = NewMailshiftErrorRecord -Message ("Could not reach the Mailshift service at {0}: {1}" -f $Connection.Uri, $reason) -ErrorId 'MailshiftConnectionFailed' -Category 'ConnectionError' -Target $Connection.Uri -InnerException $failure.Exception
            StopMailshiftCommand -Cmdlet $Cmdlet -ErrorRecord $record
        }
        $status = [int]$failedResponse.StatusCode
        $text = ReadMailshiftErrorText -Failure $failure
    }

    $answer = $null
    if ($text) {
        try {
            $answer = ConvertFrom-Json -InputObject $text
        }
        catch {
            $answer = $null
        }
    }

    if ($status -ge 400 -or $null -eq $answer) {
        if ($null -ne $answer -and $answer.PSObject.Properties['error']) {
            $record = ConvertFromMailshiftError -ServiceError $answer.error
            if ($status -eq 401) {
                $record = NewMailshiftErrorRecord -Message ("The Mailshift service at {0} refused the credentials of '{1}': {2}" -f $Connection.Uri, $Connection.UserName, $answer.error.message) -ErrorId 'MailshiftAuthenticationFailed' -Category 'AuthenticationError' -Target $Connection.Uri
            }
        }
        else {
            $shown = $text
            if ($shown.Length -gt 300) {
                $shown = $shown.Substring(0, 300) + '...'
            }
            $record = NewMailshiftErrorRecord -Message ("The Mailshift service at {0} answered HTTP {1} without a Mailshift error: {2}" -f $Connection.Uri, $status, $shown) -ErrorId 'MailshiftUnexpectedAnswer' -Category 'ProtocolError' -Target $Connection.Uri
        }
        StopMailshiftCommand -Cmdlet $Cmdlet -ErrorRecord $record
    }
    return $answer
}

function InvokeMailshiftCmdlet {
    # Runs one cmdlet on the service and writes what it returned through the calling command:
    # objects (with their type names), warnings, and errors as ErrorRecords.
    param(
        [Parameter(Mandatory = $true)]
        [System.Management.Automation.PSCmdlet]
        $Cmdlet,

        [Parameter(Mandatory = $true)]
        [string]
        $Name,

        [Parameter(Mandatory = $true)]
        [AllowEmptyCollection()]
        [System.Collections.IDictionary]
        $Parameters
    )

    $connection = GetMailshiftConnection -Cmdlet $Cmdlet
    $body = @{ parameters = $Parameters }
    $path = $script:MailshiftInvokePath -f [System.Uri]::EscapeDataString($Name)
    $answer = InvokeMailshiftRequest -Cmdlet $Cmdlet -Connection $connection -Method 'POST' -Path $path -Body $body

    foreach ($warning in @($answer.warnings)) {
        if ($null -ne $warning) {
            $Cmdlet.WriteWarning([string]$warning)
        }
    }
    foreach ($item in @($answer.output)) {
        $Cmdlet.WriteObject((ConvertFromMailshiftValue -Value $item), $false)
    }
    foreach ($serviceError in @($answer.errors)) {
        if ($null -eq $serviceError) {
            continue
        }
        $record = ConvertFromMailshiftError -ServiceError $serviceError
        if (TestMailshiftTrue $serviceError.terminating) {
            $Cmdlet.ThrowTerminatingError($record)
        }
        $Cmdlet.WriteError($record)
    }
}
