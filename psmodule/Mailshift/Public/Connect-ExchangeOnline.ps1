function Connect-ExchangeOnline {
    <#
    .SYNOPSIS
    Connects to Mailshift when a script's Exchange Online prelude is bound to it.

    .DESCRIPTION
    When Mailshift is configured to bind Exchange preludes (Connect-Mailshift
    -BindExchangePreludes, the environment variable MAILSHIFT_BIND_EXCHANGE=1, or the saved
    credential file), Connect-ExchangeOnline connects to the Mailshift service instead: the
    configured address and credentials are used, and the script's -Credential only fills in
    missing credentials. Every other parameter of the Exchange Online command (-ShowBanner,
    -UserPrincipalName, -Prefix, ...) is accepted and has no effect.

    When binding is not configured, the call goes to the ExchangeOnlineManagement module's
    Connect-ExchangeOnline unchanged, if that module is installed.

    .EXAMPLE
    Connect-ExchangeOnline -UserPrincipalName admin@contoso.edu -ShowBanner:$false

    With MAILSHIFT_BIND_EXCHANGE=1, MAILSHIFT_URI, MAILSHIFT_USER and MAILSHIFT_PASSWORD set,
    connects to Mailshift; the rest of the script's migration cmdlets then run there.

    .EXAMPLE
    Connect-ExchangeOnline -Credential $cred

    With binding configured and only MAILSHIFT_URI set, connects to Mailshift with the
    credentials in $cred.

    .LINK
    about_Mailshift
    #>
    if (TestMailshiftPreludeBinding) {
        $mailshiftArguments = ReadMailshiftArguments -Arguments $args -Names @('ConnectionUri', 'Credential', 'UserPrincipalName', 'Prefix', 'DelegatedOrganization', 'ExchangeEnvironmentName', 'Organization', 'AppId', 'CertificateThumbprint', 'CommandName', 'PageSize') -Switches @('ShowBanner', 'ShowProgress', 'Device', 'InlineCredential', 'ManagedIdentity', 'UseRPSSession', 'SkipLoadingFormatData', 'SkipLoadingCmdletHelp', 'DisableWAM')
        $null = ConnectMailshiftPrelude -ConnectionUri $null -Credential $mailshiftArguments.Named['Credential'] -Source 'Connect-ExchangeOnline'
        return
    }
    if (-not (Get-Module -ListAvailable -Name 'ExchangeOnlineManagement')) {
        $record = NewMailshiftErrorRecord -Message 'Connect-ExchangeOnline: Mailshift is not configured to bind Exchange preludes, and the ExchangeOnlineManagement module is not installed. Set MAILSHIFT_BIND_EXCHANGE=1 (or use Connect-Mailshift -BindExchangePreludes) to run this script on Mailshift.' -ErrorId 'MailshiftPreludeNotBound' -Category 'ObjectNotFound'
        StopMailshiftCommand -ErrorRecord $record
    }
    ExchangeOnlineManagement\Connect-ExchangeOnline @args
}
