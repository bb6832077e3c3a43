function Remove-PSSession {
    <#
    .FORWARDHELPTARGETNAME Microsoft.PowerShell.Core\Remove-PSSession
    .FORWARDHELPCATEGORY Cmdlet
    #>
    # Removing a Mailshift session (from the redirected Exchange prelude) leaves the Mailshift
    # connection as it is, so a script's closing "Remove-PSSession $Session" succeeds. Real
    # sessions, given as arguments or piped, go to PowerShell's own Remove-PSSession.
    $piped = @()
    if ($MyInvocation.ExpectingInput) {
        $piped = @($input)
    }
    $mailshiftArguments = ReadMailshiftArguments -Arguments $args -Names @('Session', 'Id', 'Name', 'InstanceId', 'ComputerName', 'ContainerId', 'VMId', 'VMName') -Switches @('WhatIf', 'Confirm')
    $given = @($mailshiftArguments.Positional) + @($mailshiftArguments.Named['Session'])
    $ours = FindMailshiftSessions -Values ($given + $piped)
    if ($ours.Count -eq 0) {
        if ($piped.Count -gt 0) {
            $piped | Microsoft.PowerShell.Core\Remove-PSSession @args
        }
        else {
            Microsoft.PowerShell.Core\Remove-PSSession @args
        }
        return
    }
    foreach ($session in $ours) {
        $session.State = 'Closed'
        $session.Availability = 'None'
    }
    $others = @($piped | Where-Object { -not (TestMailshiftSession -Value $_) })
    if ($others.Count -gt 0) {
        $others | Microsoft.PowerShell.Core\Remove-PSSession
    }
}
