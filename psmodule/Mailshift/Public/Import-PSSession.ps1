function Import-PSSession {
    <#
    .FORWARDHELPTARGETNAME Microsoft.PowerShell.Utility\Import-PSSession
    .FORWARDHELPCATEGORY Cmdlet
    #>
    # Importing a Mailshift session needs nothing: the module's cmdlets already run on the
    # service. It returns the Mailshift module, so "Import-Module (Import-PSSession $s) -Global"
    # also works. Any other session goes to PowerShell's own Import-PSSession untouched.
    $mailshiftArguments = ReadMailshiftArguments -Arguments $args -Names @('Session', 'Prefix', 'CommandName', 'FormatTypeName', 'ArgumentList', 'CommandType', 'Module', 'FullyQualifiedModule', 'Certificate') -Switches @('DisableNameChecking', 'AllowClobber')
    $candidates = @($mailshiftArguments.Positional) + @($mailshiftArguments.Named['Session'])
    $sessions = FindMailshiftSessions -Values $candidates
    if ($sessions.Count -gt 0) {
        return $ExecutionContext.SessionState.Module
    }
    Microsoft.PowerShell.Utility\Import-PSSession @args
}
