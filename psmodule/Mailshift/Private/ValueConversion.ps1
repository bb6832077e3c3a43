# Values to and from the REST API's JSON.
#
# Out: switches become booleans, byte arrays base64 text, dates ISO 8601 UTC
# ("2026-07-30T21:00:00Z", which Windows PowerShell 5.1's ConvertTo-Json would otherwise write
# as "\/Date(...)\/"), time spans "d.hh:mm:ss", credentials {UserName, Password}, and objects
# that came from the service go back in the shape they came in ({typeNames, properties, text}),
# so "$batch | Start-MigrationBatch" and "-Identity $batch.Identity" name the same batch.
#
# In: {typeNames, properties, text} becomes a PSCustomObject with those PSTypeNames (so the
# views of Mailshift.Format.ps1xml apply) whose ToString() is the text (a batch's Identity
# prints as its name); ISO 8601 date strings become local DateTime values. PowerShell 7's
# ConvertFrom-Json already returns DateTime values for them and 5.1's returns strings; both end
# up the same.

$script:MailshiftIsoDate = '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$'
$script:MailshiftPlainTypeNames = @('System.Management.Automation.PSCustomObject', 'System.Object')

function ConvertToMailshiftParameters {
    param(
        [Parameter(Mandatory = $true)]
        [AllowEmptyCollection()]
        [System.Collections.IDictionary]
        $BoundParameters,

        [Parameter(Mandatory = $true)]
        [AllowEmptyCollection()]
        [string[]]
        $Names
    )

    $parameters = @{}
    foreach ($name in $Names) {
        if ($BoundParameters.Contains($name)) {
            $parameters[$name] = ConvertToMailshiftJsonValue -Value $BoundParameters[$name]
        }
    }
    return $parameters
}

function TestMailshiftScriptToString {
    param([object]$Value)

    $method = $Value.PSObject.Methods['ToString']
    return ($null -ne $method -and $method.MemberType -eq [System.Management.Automation.PSMemberTypes]::ScriptMethod)
}

function ConvertToMailshiftJsonValue {
    param(
        [AllowNull()]
        [object]
        $Value
    )

    if ($null -eq $Value) {
        return $null
    }
    if ($Value -is [System.Management.Automation.SwitchParameter]) {
        return $Value.IsPresent
    }
    if ($Value -is [bool] -or $Value -is [string]) {
        return $Value
    }
    if ($Value -is [char] -or $Value -is [guid] -or $Value -is [System.Enum]) {
        return $Value.ToString()
    }
    if ($Value -is [byte[]]) {
        return [System.Convert]::ToBase64String($Value)
    }
    if ($Value -is [datetime]) {
        return $Value.ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ssZ', [System.Globalization.CultureInfo]::InvariantCulture)
    }
    if ($Value -is [System.DateTimeOffset]) {
        return $Value.UtcDateTime.ToString('yyyy-MM-ddTHH:mm:ssZ', [System.Globalization.CultureInfo]::InvariantCulture)
    }
    if ($Value -is [timespan]) {
        return $Value.ToString('c', [System.Globalization.CultureInfo]::InvariantCulture)
    }
    if ($Value -is [System.ValueType]) {
        # Numbers: ConvertTo-Json writes them as JSON numbers.
        return $Value
    }
    if ($Value -is [System.Management.Automation.PSCredential]) {
        return @{ UserName = $Value.UserName; Password = $Value.GetNetworkCredential().Password }
    }
    if ($Value -is [System.Collections.IDictionary]) {
        $table = @{}
        foreach ($key in $Value.Keys) {
            $table[[string]$key] = ConvertToMailshiftJsonValue -Value $Value[$key]
        }
        return $table
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        $items = New-Object System.Collections.Generic.List[object]
        foreach ($item in $Value) {
            $items.Add((ConvertToMailshiftJsonValue -Value $item))
        }
        return , $items.ToArray()
    }
    if ($Value -is [System.Management.Automation.PSCustomObject]) {
        $typeNames = @($Value.PSObject.TypeNames | Where-Object { $script:MailshiftPlainTypeNames -notcontains $_ })
        $properties = [ordered]@{}
        foreach ($property in $Value.PSObject.Properties) {
            if ($property.IsGettable) {
                $properties[$property.Name] = ConvertToMailshiftJsonValue -Value $property.Value
            }
        }
        $text = $null
        if (TestMailshiftScriptToString -Value $Value) {
            $text = $Value.ToString()
        }
        return @{ typeNames = $typeNames; properties = $properties; text = $text }
    }
    return $Value.ToString()
}

function AddMailshiftToString {
    param(
        [Parameter(Mandatory = $true)]
        [object]
        $InputObject,

        [Parameter(Mandatory = $true)]
        [AllowEmptyString()]
        [string]
        $Text
    )

    $method = { $Text }.GetNewClosure()
    Add-Member -InputObject $InputObject -MemberType ScriptMethod -Name 'ToString' -Value $method -Force
}

function ConvertFromMailshiftValue {
    param(
        [AllowNull()]
        [object]
        $Value
    )

    if ($null -eq $Value) {
        return $null
    }
    if ($Value -is [string]) {
        if ($Value -match $script:MailshiftIsoDate) {
            return [System.DateTimeOffset]::Parse($Value, [System.Globalization.CultureInfo]::InvariantCulture).LocalDateTime
        }
        return $Value
    }
    if ($Value -is [datetime]) {
        if ($Value.Kind -eq [System.DateTimeKind]::Utc) {
            return $Value.ToLocalTime()
        }
        return $Value
    }
    if ($Value -is [System.Array]) {
        $items = New-Object System.Collections.Generic.List[object]
        foreach ($item in $Value) {
            $items.Add((ConvertFromMailshiftValue -Value $item))
        }
        return , $items.ToArray()
    }
    if ($Value -is [System.Management.Automation.PSCustomObject]) {
        $shape = $Value.PSObject.Properties
        $object = [pscustomobject]@{}
        if ($shape['typeNames'] -and $shape['properties'] -and $shape['text']) {
            $source = $Value.properties
            if ($null -ne $source) {
                foreach ($property in $source.PSObject.Properties) {
                    $converted = ConvertFromMailshiftValue -Value $property.Value
                    $object.PSObject.Properties.Add((New-Object System.Management.Automation.PSNoteProperty -ArgumentList $property.Name, $converted))
                }
            }
            $typeNames = @($Value.typeNames)
            for ($index = $typeNames.Count - 1; $index -ge 0; $index--) {
                $object.PSObject.TypeNames.Insert(0, [string]$typeNames[$index])
            }
            if ($null -ne $Value.text) {
                AddMailshiftToString -InputObject $object -Text ([string]$Value.text)
            }
            return $object
        }
        foreach ($property in $shape) {
            $converted = ConvertFromMailshiftValue -Value $property.Value
            $object.PSObject.Properties.Add((New-Object System.Management.Automation.PSNoteProperty -ArgumentList $property.Name, $converted))
        }
        return $object
    }
    return $Value
}

function GetMailshiftIdentityText {
    param([object]$Value)

    if ($null -eq $Value) {
        return ''
    }
    if ($Value -is [System.Management.Automation.PSCustomObject]) {
        if ($Value.PSObject.Properties['Identity'] -and $null -ne $Value.Identity) {
            return GetMailshiftIdentityText -Value $Value.Identity
        }
        if (TestMailshiftScriptToString -Value $Value) {
            return $Value.ToString()
        }
        foreach ($key in @('Name', 'Id', 'EmailAddress')) {
            if ($Value.PSObject.Properties[$key] -and $null -ne $Value.$key) {
                return [string]$Value.$key
            }
        }
    }
    return [string]$Value
}

function GetMailshiftTarget {
    # What -WhatIf and -Confirm name: the object the command acts on, as the service would name it.
    param(
        [Parameter(Mandatory = $true)]
        [AllowEmptyCollection()]
        [System.Collections.IDictionary]
        $BoundParameters
    )

    foreach ($key in @('Identity', 'Name', 'RemoteServer', 'Endpoint')) {
        if ($BoundParameters.Contains($key) -and $BoundParameters[$key]) {
            return GetMailshiftIdentityText -Value $BoundParameters[$key]
        }
    }
    return 'Mailshift'
}
