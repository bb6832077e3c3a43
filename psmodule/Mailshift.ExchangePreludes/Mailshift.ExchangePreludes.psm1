# Mailshift.ExchangePreludes loader: the private helpers first, then one public function per file.
# The manifest loads the Mailshift module first (RequiredModules); these functions replace
# New-PSSession, Import-PSSession, Remove-PSSession and Exchange Online's connection commands
# while this module is imported, and call the real ones unchanged unless the redirection is on.
# Runs unchanged on Windows PowerShell 5.1 and PowerShell 7.

$mailshiftPrivate = @(Get-ChildItem -Path (Join-Path $PSScriptRoot 'Private') -Filter '*.ps1' -File)
$mailshiftPublic = @(Get-ChildItem -Path (Join-Path $PSScriptRoot 'Public') -Filter '*.ps1' -File)

foreach ($mailshiftFile in @($mailshiftPrivate + $mailshiftPublic)) {
    . $mailshiftFile.FullName
}

Export-ModuleMember -Function @($mailshiftPublic | ForEach-Object { $_.BaseName })
