# ErrorRecords for the module: the service's error shape (message, category, errorId, target,
# terminating) becomes a real ErrorRecord, so -ErrorAction, try/catch and $Error behave as
# they do with Exchange's own cmdlets.

function NewMailshiftErrorRecord {
    param(
        [Parameter(Mandatory = $true)]
        [string]
        $Message,

        [Parameter(Mandatory = $true)]
        [string]
        $ErrorId,

        [string]
        $Category = 'NotSpecified',

        [object]
        $Target,

        [System.Exception]
        $InnerException
    )

    $errorCategory = [System.Management.Automation.ErrorCategory]::NotSpecified
    $knownCategories = [System.Enum]::GetNames([System.Management.Automation.ErrorCategory])
    if ($knownCategories -contains $Category) {
        $errorCategory = [System.Enum]::Parse([System.Management.Automation.ErrorCategory], $Category, $true)
    }

    switch ($errorCategory.ToString()) {
        'ObjectNotFound' { $exception = [System.Management.Automation.ItemNotFoundException]::new($Message, $InnerException) }
        'InvalidArgument' { $exception = [System.ArgumentException]::new($Message, $InnerException) }
        'InvalidData' { $exception = [System.ArgumentException]::new($Message, $InnerException) }
        'SecurityError' { $exception = [System.UnauthorizedAccessException]::new($Message, $InnerException) }
        'PermissionDenied' { $exception = [System.UnauthorizedAccessException]::new($Message, $InnerException) }
        'AuthenticationError' { $exception = [System.UnauthorizedAccessException]::new($Message, $InnerException) }
        'NotImplemented' { $exception = [System.NotSupportedException]::new($Message, $InnerException) }
        default { $exception = [System.InvalidOperationException]::new($Message, $InnerException) }
    }

    # The errorId alone: PowerShell appends ",<command name>" when the record is written by a
    # command, which gives the FullyQualifiedErrorId the service reported.
    return [System.Management.Automation.ErrorRecord]::new($exception, $ErrorId, $errorCategory, $Target)
}

function ConvertFromMailshiftError {
    param(
        [Parameter(Mandatory = $true)]
        [object]
        $ServiceError
    )

    $message = [string]$ServiceError.message
    if (-not $message) {
        $message = 'The Mailshift service reported an error without a message.'
    }
    $errorId = [string]$ServiceError.errorId
    if (-not $errorId) {
        $errorId = 'MailshiftError'
    }
    $category = [string]$ServiceError.category
    if (-not $category) {
        $category = 'NotSpecified'
    }
    return NewMailshiftErrorRecord -Message $message -ErrorId $errorId -Category $category -Target $ServiceError.target
}

function StopMailshiftCommand {
    # Ends the calling command with a terminating error: through its $PSCmdlet when it is an
    # advanced function, with throw when it is a simple (pass-through) function.
    param(
        [System.Management.Automation.PSCmdlet]
        $Cmdlet,

        [Parameter(Mandatory = $true)]
        [System.Management.Automation.ErrorRecord]
        $ErrorRecord
    )

    if ($null -ne $Cmdlet) {
        $Cmdlet.ThrowTerminatingError($ErrorRecord)
    }
    throw $ErrorRecord
}

function WriteMailshiftError {
    param(
        [System.Management.Automation.PSCmdlet]
        $Cmdlet,

        [Parameter(Mandatory = $true)]
        [System.Management.Automation.ErrorRecord]
        $ErrorRecord
    )

    if ($null -ne $Cmdlet) {
        $Cmdlet.WriteError($ErrorRecord)
    }
    else {
        Write-Error -ErrorRecord $ErrorRecord
    }
}
