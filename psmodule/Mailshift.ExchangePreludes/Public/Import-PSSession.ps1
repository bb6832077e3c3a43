function Import-PSSession {
    <#
    .FORWARDHELPTARGETNAME Microsoft.PowerShell.Utility\Import-PSSession
    .FORWARDHELPCATEGORY Cmdlet
    #>
    # Importing a Mailshift session (made by the redirected New-PSSession) needs nothing: the
    # Mailshift module's cmdlets already run on the service, which a warning names. It returns
    # the Mailshift module, so "Import-Module (Import-PSSession $s) -Global" also works. Any
    # other session goes to PowerShell's own Import-PSSession untouched.
    $mailshiftArguments = ReadMailshiftArguments -Arguments $args -Names @('Session', 'Prefix', 'CommandName', 'FormatTypeName', 'ArgumentList', 'CommandType', 'Module', 'FullyQualifiedModule', 'Certificate') -Switches @('DisableNameChecking', 'AllowClobber')
    $candidates = @($mailshiftArguments.Positional) + @($mailshiftArguments.Named['Session'])
    $sessions = FindMailshiftSessions -Values $candidates
    if ($sessions.Count -gt 0) {
        Write-Warning ("Import-PSSession: {0} is a Mailshift session; the Mailshift module's cmdlets already run on the Mailshift service at {1}, so nothing is imported." -f $sessions[0].Name, $sessions[0].MailshiftUri)
        return @(Get-Module -Name 'Mailshift')[0]
    }
    Microsoft.PowerShell.Utility\Import-PSSession @args
}
