function New-PSSession {
    <#
    .FORWARDHELPTARGETNAME Microsoft.PowerShell.Core\New-PSSession
    .FORWARDHELPCATEGORY Cmdlet
    #>
    # Exchange's remote-PowerShell prelude, when the redirection is on
    # (Enable-MailshiftExchangePrelude, MAILSHIFT_BIND_EXCHANGE=1, or a saved choice):
    #   $s = New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri ... -Credential $c -Authentication Basic -AllowRedirection
    # connects to Mailshift, warns which Mailshift service it talks to, and returns a session
    # object that Import-PSSession and Remove-PSSession accept. Every other call goes to
    # PowerShell's own New-PSSession with the arguments exactly as written.
    $mailshiftArguments = ReadMailshiftArguments -Arguments $args -Names @('ConfigurationName', 'ConnectionUri', 'Credential', 'Authentication', 'Name', 'ComputerName', 'SessionOption', 'Port', 'ApplicationName', 'CertificateThumbprint', 'ThrottleLimit') -Switches @('AllowRedirection', 'UseSSL', 'EnableNetworkAccess')
    $mailshiftNamed = $mailshiftArguments.Named
    if ($mailshiftNamed['ConfigurationName'] -eq 'Microsoft.Exchange' -and (TestMailshiftPreludeBinding)) {
        $computer = $null
        $given = $null
        if ($mailshiftNamed['ConnectionUri'] -and [System.Uri]::TryCreate([string]$mailshiftNamed['ConnectionUri'], [System.UriKind]::Absolute, [ref]$given)) {
            $computer = $given.Host
        }
        $connection = ConnectMailshiftThroughPrelude -ConnectionUri $mailshiftNamed['ConnectionUri'] -Credential $mailshiftNamed['Credential'] -Source 'New-PSSession' -Requested $computer
        if (-not $computer) {
            $computer = $connection.HostName
        }
        $name = 'Mailshift'
        if ($mailshiftNamed['Name']) {
            $name = [string]$mailshiftNamed['Name']
        }
        $session = [pscustomobject]@{
            Id                = 1
            Name              = $name
            ComputerName      = $computer
            ComputerType      = 'RemoteMachine'
            State             = 'Opened'
            ConfigurationName = 'Microsoft.Exchange'
            Availability      = 'Available'
            ConnectionUri     = [string]$mailshiftNamed['ConnectionUri']
            MailshiftUri      = $connection.Uri
        }
        $session.PSObject.TypeNames.Insert(0, 'Mailshift.PSSession')
        return $session
    }
    if ($MyInvocation.ExpectingInput) {
        $input | Microsoft.PowerShell.Core\New-PSSession @args
    }
    else {
        Microsoft.PowerShell.Core\New-PSSession @args
    }
}
