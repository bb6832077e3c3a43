# Whether this session's Exchange preludes go to Mailshift, what they print when they do, and
# the calls into the Mailshift module, where the connection state lives.
#
# Nothing is redirected until someone asks, in this order of precedence:
#   Enable-MailshiftExchangePrelude or Disable-MailshiftExchangePrelude in this session;
#   the environment variable MAILSHIFT_BIND_EXCHANGE (1/true or 0/false) of this process;
#   a choice saved with Enable-MailshiftExchangePrelude -Save (the file named by
#   MAILSHIFT_PRELUDES_FILE, else Mailshift\exchange-preludes.txt in the application-data folder).
# A credential saved by Connect-Mailshift never turns the redirection on.

$script:MailshiftPreludesEnabled = $null

function GetMailshiftPreludesFilePath {
    if ($env:MAILSHIFT_PRELUDES_FILE) {
        return $env:MAILSHIFT_PRELUDES_FILE
    }
    $folder = [System.Environment]::GetFolderPath('ApplicationData')
    if (-not $folder) {
        $folder = $HOME
    }
    return Join-Path (Join-Path $folder 'Mailshift') 'exchange-preludes.txt'
}

function TestMailshiftPreludeBinding {
    # Whether the Exchange preludes (New-PSSession -ConfigurationName Microsoft.Exchange, Connect-ExchangeOnline, ...) go to Mailshift now.
    if ($null -ne $script:MailshiftPreludesEnabled) {
        return [bool]$script:MailshiftPreludesEnabled
    }
    if ($null -ne $env:MAILSHIFT_BIND_EXCHANGE) {
        return @('1', 'true', 'yes', 'on', '$true') -contains ([string]$env:MAILSHIFT_BIND_EXCHANGE).Trim().ToLowerInvariant()
    }
    return [bool](Test-Path -LiteralPath (GetMailshiftPreludesFilePath) -PathType Leaf)
}

function InvokeMailshiftModule {
    # Runs a script block inside the Mailshift module, where its private helpers and the
    # session's connection live ("& $module { ... }" binds the block to the module's scope).
    param(
        [Parameter(Mandatory = $true)]
        [scriptblock]
        $ScriptBlock,

        [object[]]
        $ArgumentList = @()
    )

    $modules = @(Get-Module -Name 'Mailshift')
    if ($modules.Count -eq 0) {
        throw 'The Mailshift module is not loaded: import Mailshift.ExchangePreludes again (it loads Mailshift first).'
    }
    return & $modules[0] $ScriptBlock @ArgumentList
}

function WriteMailshiftRedirection {
    # Tells the user, every time, which server a redirected prelude really talks to.
    param(
        [Parameter(Mandatory = $true)]
        [string]
        $Source,

        [string]
        $Requested,

        [Parameter(Mandatory = $true)]
        [object]
        $Connection
    )

    $instead = 'Exchange'
    if ($Requested) {
        $instead = $Requested
    }
    Write-Warning ("{0} is redirected by Mailshift.ExchangePreludes: it talks to the Mailshift service at {1} as {2}, not to {3}. Disable-MailshiftExchangePrelude turns the redirection off." -f $Source, $Connection.Uri, $Connection.UserName, $instead)
}

function ConnectMailshiftThroughPrelude {
    # Connects a redirected prelude to Mailshift (the Mailshift module's settings win; the
    # prelude's -ConnectionUri and -Credential fill in what is missing) and says so.
    param(
        [object]
        $ConnectionUri,

        [object]
        $Credential,

        [Parameter(Mandatory = $true)]
        [string]
        $Source,

        [string]
        $Requested
    )

    $connection = InvokeMailshiftModule -ScriptBlock {
        param($PreludeUri, $PreludeCredential, $PreludeSource)
        ConnectMailshiftPrelude -ConnectionUri $PreludeUri -Credential $PreludeCredential -Source $PreludeSource
    } -ArgumentList @($ConnectionUri, $Credential, $Source)
    WriteMailshiftRedirection -Source $Source -Requested $Requested -Connection $connection
    return $connection
}

function StopMailshiftPrelude {
    # Ends a prelude with a terminating error in the Mailshift module's error shape.
    param(
        [Parameter(Mandatory = $true)]
        [string]
        $Message,

        [Parameter(Mandatory = $true)]
        [string]
        $ErrorId,

        [Parameter(Mandatory = $true)]
        [string]
        $Category
    )

    InvokeMailshiftModule -ScriptBlock {
        param($ErrorMessage, $Id, $ErrorCategory)
        $record = NewMailshiftErrorRecord -Message $ErrorMessage -ErrorId $Id -Category $ErrorCategory
        StopMailshiftCommand -ErrorRecord $record
    } -ArgumentList @($Message, $ErrorId, $Category)
}
