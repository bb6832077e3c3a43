function New-PSSession {
    <#
    .FORWARDHELPTARGETNAME Microsoft.PowerShell.Core\New-PSSession
    .FORWARDHELPCATEGORY Cmdlet
    #>
    # Exchange's remote-PowerShell prelude, when Mailshift is configured to bind it
    # (Connect-Mailshift -BindExchangePreludes, MAILSHIFT_BIND_EXCHANGE=1 or the credential file):
    #   $s = New-PSSession -ConfigurationName Microsoft.Exchange -ConnectionUri ... -Credential $c -Authentication Basic -AllowRedirection
    # connects to Mailshift and returns a session object that Import-PSSession and
    # Remove-PSSession accept. Every other call goes to PowerShell's own New-PSSession with the
    # arguments exactly as written.
    $mailshiftArguments = ReadMailshiftArguments -Arguments $args -Names @('ConfigurationName', 'ConnectionUri', 'Credential', 'Authentication', 'Name', 'ComputerName', 'SessionOption', 'Port', 'ApplicationName', 'CertificateThumbprint', 'ThrottleLimit') -Switches @('AllowRedirection', 'UseSSL', 'EnableNetworkAccess')
    $mailshiftNamed = $mailshiftArguments.Named
    if ($mailshiftNamed['ConfigurationName'] -eq 'Microsoft.Exchange' -and (TestMailshiftPreludeBinding)) {
        $connection = ConnectMailshiftPrelude -ConnectionUri $mailshiftNamed['ConnectionUri'] -Credential $mailshiftNamed['Credential'] -Source 'New-PSSession'
        $computer = $connection.HostName
        $given = $null
        if ($mailshiftNamed['ConnectionUri'] -and [System.Uri]::TryCreate([string]$mailshiftNamed['ConnectionUri'], [System.UriKind]::Absolute, [ref]$given)) {
            $computer = $given.Host
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
