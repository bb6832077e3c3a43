# TLS for Windows PowerShell 5.1 and PowerShell 7, and trusting a self-signed service certificate.
#
# PowerShell 7 (and 6) use HttpClient: Invoke-WebRequest -SkipCertificateCheck does it for one
# request. Windows PowerShell 5.1 uses HttpWebRequest: it has no -SkipCertificateCheck, may not
# offer TLS 1.2 by default, and validates certificates through one process-wide
# ServicePointManager callback. The callback installed here accepts certificate errors only for
# the Mailshift hosts the administrator asked to trust, and leaves every other host to the
# validation that was in place before.

$script:MailshiftCertificatePolicySource = @'
using System;
using System.Collections.Generic;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

public static class MailshiftCertificatePolicy
{
    private static readonly object Gate = new object();
    private static readonly Dictionary<string, bool> Hosts = new Dictionary<string, bool>(StringComparer.OrdinalIgnoreCase);
    private static RemoteCertificateValidationCallback previous;
    private static bool installed;

    public static void Trust(string host)
    {
        lock (Gate)
        {
            Hosts[host] = true;
            if (!installed)
            {
                previous = ServicePointManager.ServerCertificateValidationCallback;
                ServicePointManager.ServerCertificateValidationCallback = Validate;
                installed = true;
            }
        }
    }

    private static bool Validate(object sender, X509Certificate certificate, X509Chain chain, SslPolicyErrors errors)
    {
        HttpWebRequest request = sender as HttpWebRequest;
        if (request != null)
        {
            lock (Gate)
            {
                if (Hosts.ContainsKey(request.RequestUri.Host))
                {
                    return true;
                }
            }
        }
        if (previous != null)
        {
            return previous(sender, certificate, chain, errors);
        }
        return errors == SslPolicyErrors.None;
    }
}
'@

function TestMailshiftCoreEdition {
    # PowerShell 6 and 7 ("Core") versus Windows PowerShell 5.1 ("Desktop").
    return ($PSVersionTable.PSVersion.Major -ge 6)
}

function EnableMailshiftTransport {
    param(
        [Parameter(Mandatory = $true)]
        [object]
        $Connection
    )

    if (TestMailshiftCoreEdition) {
        return
    }
    # Windows PowerShell 5.1: add TLS 1.2 unless the process leaves the choice to the OS (0).
    $tls12 = [System.Net.SecurityProtocolType]::Tls12
    $current = [System.Net.ServicePointManager]::SecurityProtocol
    if ([int]$current -ne 0 -and ($current -band $tls12) -ne $tls12) {
        [System.Net.ServicePointManager]::SecurityProtocol = $current -bor $tls12
    }
    if ($Connection.SkipCertificateCheck -and $Connection.Uri.StartsWith('https:')) {
        if (-not ('MailshiftCertificatePolicy' -as [type])) {
            Add-Type -TypeDefinition $script:MailshiftCertificatePolicySource -Language CSharp
        }
        [MailshiftCertificatePolicy]::Trust($Connection.HostName)
    }
}

function AddMailshiftTransportParameters {
    # Adds the edition-specific Invoke-WebRequest parameters to a splatting table. Their names
    # appear only as hashtable keys, so Windows PowerShell 5.1 never sees them as parameters.
    param(
        [Parameter(Mandatory = $true)]
        [hashtable]
        $Request,

        [Parameter(Mandatory = $true)]
        [object]
        $Connection
    )

    if ($PSVersionTable.PSVersion.Major -ge 7) {
        # Answers with 4xx/5xx status come back as responses, with their JSON error body.
        $Request['SkipHttpErrorCheck'] = $true
    }
    if ((TestMailshiftCoreEdition) -and $Connection.SkipCertificateCheck) {
        $Request['SkipCertificateCheck'] = $true
    }
}
