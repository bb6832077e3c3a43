function Disconnect-Mailshift {
    <#
    .SYNOPSIS
    Forgets the Mailshift connection of this session.

    .DESCRIPTION
    Clears what Connect-Mailshift (or a redirected Exchange prelude) set up. The environment
    variables and the credential file still apply afterwards; with -RemoveSavedCredential the
    credential file is deleted too.

    .PARAMETER RemoveSavedCredential
    Also deletes the credential file written by Connect-Mailshift -SaveCredential.

    .EXAMPLE
    Disconnect-Mailshift

    Ends the session's connection.

    .EXAMPLE
    Disconnect-Mailshift -RemoveSavedCredential

    Ends the connection and deletes the saved credentials.

    .LINK
    Connect-Mailshift
    #>
    [CmdletBinding(SupportsShouldProcess = $true, ConfirmImpact = 'Low')]
    param(
        [switch]
        $RemoveSavedCredential
    )

    $script:MailshiftConnection = $null
    if ($RemoveSavedCredential) {
        $path = GetMailshiftConnectionFilePath
        if ((Test-Path -LiteralPath $path -PathType Leaf) -and $PSCmdlet.ShouldProcess($path, 'Remove the saved Mailshift credentials')) {
            Remove-Item -LiteralPath $path -Force
        }
    }
}
