# Reads the arguments of the pass-through functions (New-PSSession, Connect-ExchangeOnline, ...).
# Those are simple functions so that $args reaches PowerShell's own cmdlet untouched when
# Mailshift does not handle the call; this reader only looks for the few values Mailshift needs
# (-ConfigurationName, -ConnectionUri, -Credential, -Session). Names may be abbreviated to a
# unique prefix, and written as "-Name value" or "-Name:value".

function ReadMailshiftArguments {
    param(
        [AllowEmptyCollection()]
        [object[]]
        $Arguments = @(),

        [Parameter(Mandatory = $true)]
        [string[]]
        $Names,

        [string[]]
        $Switches = @()
    )

    $named = @{}
    $positional = New-Object System.Collections.Generic.List[object]
    $index = 0
    while ($index -lt $Arguments.Count) {
        $item = $Arguments[$index]
        $index++
        if (-not ($item -is [string]) -or $item.Length -lt 2 -or -not $item.StartsWith('-')) {
            $positional.Add($item)
            continue
        }
        $token = $item.Substring(1)
        $attached = $token.EndsWith(':')
        $token = $token.TrimEnd(':')
        $candidates = @($Names + $Switches | Where-Object { $_.StartsWith($token, [System.StringComparison]::OrdinalIgnoreCase) })
        $exact = @($candidates | Where-Object { $_ -eq $token })
        if ($exact.Count -eq 1) {
            $candidates = $exact
        }
        $name = $token
        if ($candidates.Count -eq 1) {
            $name = $candidates[0]
        }
        $isSwitch = ($Switches -contains $name)
        if ($attached -or (-not $isSwitch -and $index -lt $Arguments.Count)) {
            if ($index -lt $Arguments.Count) {
                $named[$name] = $Arguments[$index]
                $index++
            }
        }
        else {
            $named[$name] = $true
        }
    }
    return @{ Named = $named; Positional = $positional.ToArray() }
}

function TestMailshiftSession {
    param([object]$Value)

    return ($null -ne $Value -and $Value -is [System.Management.Automation.PSCustomObject] -and $Value.PSObject.TypeNames -contains 'Mailshift.PSSession')
}

function FindMailshiftSessions {
    # The Mailshift sessions among a list of values (arrays are searched too).
    param(
        [AllowEmptyCollection()]
        [object[]]
        $Values = @()
    )

    $found = New-Object System.Collections.Generic.List[object]
    foreach ($value in $Values) {
        foreach ($item in @($value)) {
            if (TestMailshiftSession -Value $item) {
                $found.Add($item)
            }
        }
    }
    return , $found.ToArray()
}
