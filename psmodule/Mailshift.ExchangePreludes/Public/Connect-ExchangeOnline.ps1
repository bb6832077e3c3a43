function Connect-ExchangeOnline {
    <#
    .SYNOPSIS
    Connects to Mailshift when the Exchange prelude redirection is on.

    .DESCRIPTION
    When the redirection of Mailshift.ExchangePreludes is on (Enable-MailshiftExchangePrelude,
    the environment variable MAILSHIFT_BIND_EXCHANGE=1, or a choice saved with
    Enable-MailshiftExchangePrelude -Save), Connect-ExchangeOnline connects to the Mailshift
    service instead of Exchange Online, and warns which service that is: the address and
    credentials configured for the Mailshift module are used, and the script's -Credential only
    fills in missing credentials. Every other parameter of the Exchange Online command
    (-ShowBanner, -UserPrincipalName, -Prefix, ...) is accepted and has no effect.

    When the redirection is off, the call goes to the ExchangeOnlineManagement module's
    Connect-ExchangeOnline unchanged, if that module is installed.

    .EXAMPLE
    Connect-ExchangeOnline -UserPrincipalName admin@contoso.edu -ShowBanner:$false

    After Enable-MailshiftExchangePrelude, with MAILSHIFT_URI, MAILSHIFT_USER and
    MAILSHIFT_PASSWORD set, connects to Mailshift; the rest of the script's migration cmdlets
    then run there.

    .EXAMPLE
    Connect-ExchangeOnline -Credential $cred

    With the redirection on and only MAILSHIFT_URI set, connects to Mailshift with the
    credentials in $cred.

    .LINK
    about_Mailshift_ExchangePreludes
    #>
    if (TestMailshiftPreludeBinding) {
        $mailshiftArguments = ReadMailshiftArguments -Arguments $args -Names @('ConnectionUri', 'Credential', 'UserPrincipalName', 'Prefix', 'DelegatedOrganization', 'ExchangeEnvironmentName', 'Organization', 'AppId', 'CertificateThumbprint', 'CommandName', 'PageSize') -Switches @('ShowBanner', 'ShowProgress', 'Device', 'InlineCredential', 'ManagedIdentity', 'UseRPSSession', 'SkipLoadingFormatData', 'SkipLoadingCmdletHelp', 'DisableWAM')
        $null = ConnectMailshiftThroughPrelude -ConnectionUri $null -Credential $mailshiftArguments.Named['Credential'] -Source 'Connect-ExchangeOnline' -Requested 'Exchange Online'
        return
    }
    if (-not (Get-Module -ListAvailable -Name 'ExchangeOnlineManagement')) {
        StopMailshiftPrelude -Message 'Connect-ExchangeOnline: the Exchange prelude redirection of Mailshift is off, and the ExchangeOnlineManagement module is not installed. Run Enable-MailshiftExchangePrelude to run this script on Mailshift.' -ErrorId 'MailshiftPreludeNotBound' -Category 'ObjectNotFound'
    }
    ExchangeOnlineManagement\Connect-ExchangeOnline @args
}
