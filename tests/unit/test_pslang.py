"""The restricted PowerShell interpreter: parsing, command elements, formatting, errors, refusals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from shim.errors import CommandNotFound, InvocationFailed, ObjectNotFound, ParseError, ScriptRefused
from shim.host import NO_VALUE, CommandElement, HelpMode, ParameterToken, TableView
from shim.pslang import Interpreter, PSParseError, format_objects, parse
from shim.psobject import PSObject

BATCH = "Microsoft.Exchange.Data.Storage.Management.MigrationBatch"
CSV = b"EmailAddress,UserName,Password\r\nterrya@contoso.edu,administrator*terry.adams,Pa$$word1\r\n"
SEED_NEW_BATCH = (
    "New-MigrationBatch -Imap -Name MigrationBatch1 "
    '-CSVData:([System.IO.File]::ReadAllBytes("C:\\Users\\Administrator\\Desktop\\MigrationBatch_1.csv")) '
    "-MaxConcurrentMigrations 3 -RemoteServer imap.contoso.edu -Port 143 "
    '-Timezone "Pacific Standard Time" -ExcludeFolders "Deleted Items","Junk Mail"'
)
FIXED_NOW = datetime(2026, 11, 29, 23, 18, 59, tzinfo=timezone(timedelta(hours=-8)))


def _batch(name: str, status: str, total: int) -> PSObject:
    identity = PSObject(["Microsoft.Exchange.Management.Migration.MigrationBatchId"], {"Name": name}, text=name)
    return PSObject([BATCH], {"Identity": identity, "Status": status, "TotalCount": total, "NotificationEmails": []})


class FakeHost:
    """An in-memory CommandHost: a few migration cmdlets that record the elements they receive."""

    KNOWN = (
        "New-MigrationBatch",
        "Get-MigrationBatch",
        "Start-MigrationBatch",
        "Remove-MigrationBatch",
        "Complete-Migration",
        "Test-MigrationServerAvailability",
        "Get-MigrationStatus",
    )

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[CommandElement], Any]] = []
        self.help_requests: list[tuple[str, HelpMode, str | None]] = []
        self.batches = [_batch("MigrationBatch1", "Syncing", 3), _batch("B2", "Failed", 12)]
        self._warnings: list[str] = []

    def resolve(self, name: str) -> str | None:
        return next((k for k in self.KNOWN if k.lower() == name.lower()), None)

    def invoke(self, name: str, elements: Sequence[CommandElement], input_object: Any = NO_VALUE) -> list[Any]:
        self.calls.append((name, list(elements), input_object))
        self._warnings = []
        if name == "Get-MigrationBatch":
            if "nope" in elements:
                raise ObjectNotFound("The migration batch 'nope' couldn't be found.", target="nope")
            return list(self.batches)
        if name == "Test-MigrationServerAvailability":
            return [PSObject(["TestMigrationServerAvailabilityOutcome"], {"Result": "Success", "Message": ""}, text="Success")]
        if name == "Start-MigrationBatch":
            self._warnings = ["The batch will start shortly."]
        if name == "Remove-MigrationBatch":
            raise InvocationFailed("The batch can't be removed while it is Syncing.")
        if name == "Get-MigrationStatus":
            stopping = InvocationFailed("The migration service is stopping.", error_id="ServiceStopping")
            stopping.terminating = True
            raise stopping
        return []

    def warnings(self) -> list[str]:
        return self._warnings

    def view(self, obj: PSObject) -> TableView | None:
        if obj.type_name == BATCH:
            return TableView(["Identity", "Status", "TotalCount"], labels={"TotalCount": "Total"})
        return None

    def help(self, name: str, mode: HelpMode, parameter: str | None = None) -> str:
        self.help_requests.append((name, mode, parameter))
        return f"NAME\n    {name}\n"

    def read_import_file(self, path: str) -> bytes:
        if path.replace("\\", "/").rsplit("/", 1)[-1] == "MigrationBatch_1.csv":
            return CSV
        raise ScriptRefused(f"'{path}' is not in the import folder.", error_id="ImportPathRefused")


@pytest.fixture
def host() -> FakeHost:
    return FakeHost()


@pytest.fixture
def shell(host: FakeHost) -> Interpreter:
    return Interpreter(host, now=lambda: FIXED_NOW)


def _elements(host: FakeHost, script: str) -> list[CommandElement]:
    Interpreter(host).evaluate(script)
    return host.calls[-1][1]


P = ParameterToken

# -- command mode: the elements the host receives ---------------------------------------------------------


def test_seed_new_migration_batch_elements(host: FakeHost) -> None:
    assert _elements(host, SEED_NEW_BATCH) == [
        P("Imap"),
        P("Name"),
        "MigrationBatch1",
        P("CSVData", CSV),
        P("MaxConcurrentMigrations"),
        3,
        P("RemoteServer"),
        "imap.contoso.edu",
        P("Port"),
        143,
        P("Timezone"),
        "Pacific Standard Time",
        P("ExcludeFolders"),
        ["Deleted Items", "Junk Mail"],
    ]
    assert host.calls[-1][0] == "New-MigrationBatch" and host.calls[-1][2] is NO_VALUE


def test_seed_start_and_complete(host: FakeHost, shell: Interpreter) -> None:
    outcome = shell.run('Start-MigrationBatch -NotificationEmails "super-user@contoso.edu","helpdesk@contoso.edu","CIO@contoso.edu"')
    assert host.calls[-1][1] == [P("NotificationEmails"), ["super-user@contoso.edu", "helpdesk@contoso.edu", "CIO@contoso.edu"]]
    assert outcome.stdout == "WARNING: The batch will start shortly.\n" and outcome.exit_code == 0
    shell.run("Complete-Migration -NotificationEmails super-user@contoso.edu")
    assert host.calls[-1] == ("Complete-Migration", [P("NotificationEmails"), "super-user@contoso.edu"], NO_VALUE)
    shell.run("Test-MigrationServerAvailability -RemoteServer imap.contoso.edu -Port 143")
    assert host.calls[-1][1] == [P("RemoteServer"), "imap.contoso.edu", P("Port"), 143]


def test_every_seed_command_runs(host: FakeHost, shell: Interpreter) -> None:
    script = "\n".join(
        [
            "Test-MigrationServerAvailability -RemoteServer imap.contoso.edu -Port 143",
            SEED_NEW_BATCH,
            "Start-MigrationBatch",
            'Start-MigrationBatch -NotificationEmails "super-user@contoso.edu","helpdesk@contoso.edu","CIO@contoso.edu"',
            "Complete-Migration",
            "Complete-Migration -NotificationEmails super-user@contoso.edu",
            "Get-MigrationBatch",
            "Get-Help New-MigrationBatch",
            "Get-Help New-MigrationBatch -Examples",
            "Get-Help New-MigrationBatch -Detailed",
        ]
    )
    outcome = shell.run(script)
    assert outcome.errors == [] and outcome.exit_code == 0
    assert [c[0] for c in host.calls] == [
        "Test-MigrationServerAvailability",
        "New-MigrationBatch",
        "Start-MigrationBatch",
        "Start-MigrationBatch",
        "Complete-Migration",
        "Complete-Migration",
        "Get-MigrationBatch",
    ]
    assert host.help_requests == [
        ("New-MigrationBatch", "default", None),
        ("New-MigrationBatch", "examples", None),
        ("New-MigrationBatch", "detailed", None),
    ]


def test_argument_forms(host: FakeHost) -> None:
    script = (
        "$n = 'B1'; $b = @{x = 5}; New-MigrationBatch -Name:$n -Confirm:$false -AutoStart:$true -Skip $null "
        "-Count 0x10 -Size 2KB -Ratio 1.5 -Neg -3 -Id $b.x -Sub $(1 + 1) -Arr @(1, 2) -Bare a.b\\c -Quoted 'it''s' -- -NotAParam"
    )
    assert _elements(host, script) == [
        P("Name", "B1"),
        P("Confirm", False),
        P("AutoStart", True),
        P("Skip"),
        None,
        P("Count"),
        16,
        P("Size"),
        2048,
        P("Ratio"),
        1.5,
        P("Neg"),
        -3,
        P("Id"),
        5,
        P("Sub"),
        2,
        P("Arr"),
        [1, 2],
        P("Bare"),
        "a.b\\c",
        P("Quoted"),
        "it's",
        "-NotAParam",
    ]


def test_splatting(host: FakeHost) -> None:
    script = "$p = @{ Name = 'B1'; Imap = $true; Confirm = [Switch]$false }; $a = 'x', 2; New-MigrationBatch @p @a -WhatIf"
    assert _elements(host, script) == [
        P("Name", "B1", splatted=True),
        P("Imap", True, splatted=True),
        P("Confirm", False, splatted=True),
        "x",
        2,
        P("WhatIf"),
    ]


def test_line_continuation_comments_and_separators(host: FakeHost) -> None:
    script = "<# block\ncomment #>\nNew-MigrationBatch -Name B1 `\n  -Port 993 # trailing\n; Start-MigrationBatch"
    Interpreter(host).run(script)
    assert host.calls == [("New-MigrationBatch", [P("Name"), "B1", P("Port"), 993], NO_VALUE), ("Start-MigrationBatch", [], NO_VALUE)]


def test_common_parameters_are_stripped(host: FakeHost) -> None:
    script = "Start-MigrationBatch B1 -ErrorAction SilentlyContinue -EA 0 -ErrorA Stop -WarningAction Ignore -Verbose -OutVariable o -Confirm:$false"
    assert _elements(host, script) == ["B1", P("Confirm", False)]


def test_pipeline_calls_host_once_per_input(host: FakeHost, shell: Interpreter) -> None:
    shell.run("Get-MigrationBatch | Start-MigrationBatch -Confirm:$false")
    downstream = [c for c in host.calls if c[0] == "Start-MigrationBatch"]
    assert [c[2] for c in downstream] == host.batches
    assert all(c[1] == [P("Confirm", False)] for c in downstream)


def test_read_all_bytes_goes_through_the_host(host: FakeHost, shell: Interpreter) -> None:
    assert shell.evaluate("[IO.File]::ReadAllBytes('MigrationBatch_1.csv').Length") == [len(CSV)]
    outcome = shell.run("[System.IO.File]::ReadAllBytes('C:\\Windows\\win.ini')")
    assert "is not in the import folder" in outcome.errors[0] and outcome.exit_code == 1
    assert shell.evaluate("$bytes = Get-Content MigrationBatch_1.csv -Encoding Byte; $bytes.GetType().Name") == ["Byte[]"]
    assert shell.evaluate("(Get-Content MigrationBatch_1.csv)[0]") == ["EmailAddress,UserName,Password"]


# -- expressions -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ('$b = "x"; "a`tb`n$b ${b} `$b ""q"""', 'a\tb\nx x $b "q"'),
        ("'single $b ''q'''", "single $b 'q'"),
        ('$o = [pscustomobject]@{Name = "N"}; "$o.Name and $($o.Name)"', "@{Name=N}.Name and N"),
        ('@"\nHello $(1 + 2)\n  "x"\n"@', 'Hello 3\n  "x"'),
        ("@'\nraw $x\n'@", "raw $x"),
        ("1 + 2 * 3 - 4 / 2", 5),
        ("7 / 2", 3.5),
        ("'ab' + 1", "ab1"),
        ("'ab' * 2", "abab"),
        ("(1, 2) + 3", [1, 2, 3]),
        ("1..4 -join ','", "1,2,3,4"),
        ("'a,b;c' -split '[,;]'", ["a", "b", "c"]),
        ("'Batch1' -replace 'batch(\\d)', 'B$1'", "B1"),
        ("'{0} is {1:N1}' -f 'x', 2.25", "x is 2.2"),
        ("'SYNCED' -eq 'synced'", True),
        ("'Synced' -ceq 'synced'", False),
        ("'Syncing' -like 'sync*'", True),
        ("'SyncedWithErrors' -match '^Synced(?<rest>.*)$'; $Matches.rest", [True, "WithErrors"]),
        ("1, 2, 3, 2 -eq 2", [2, 2]),
        ("@('a', 'b') -contains 'B'", True),
        ("'b' -in 'a', 'b'", True),
        ("5 -gt '10'", False),
        ("'5' -gt 10", True),
        ("-not $null -and !$false", True),
        ("$null -eq $x", True),
        ("[int]'42' + [int]2.5", 44),
        ("[string]5 + 5", "55"),
        ("[bool]'False'", True),
        (",[byte[]](65, 66)", b"AB"),
        ("([array]'x').Count", 1),
        ("[datetime]'2022/08/31 18:00' | ForEach-Object { $_.Hour }", 18),
        ("'  Pad '.Trim().ToUpper().Replace('P', 'b').Length", 3),
        ("'a,b'.Split(',')[1]", "b"),
        ("$h = [ordered]@{b = 1; A = 2}; $h.a + $h['B'] + $h.Count", 5),
        ("$h = @{}; $h.Key = 'v'; $h['k2'] = 1; $h.Keys -join ','", "Key,k2"),
        ("$a = @(); $a += 1; $a += 'two'; $a.Count", 2),
        ("$i = 0; $i++; $i += 5; $i", 6),
        ("(1, 2, 3)[-1]", 3),
        ("$x = 3; if ($x -gt 5) { 'big' } elseif ($x -gt 2) { 'mid' } else { 'small' }", "mid"),
        ("$s = 0; foreach ($n in 1..10) { if ($n -eq 3) { continue }; if ($n -gt 5) { break }; $s += $n }; $s", 12),
        ("$s = ''; for ($i = 0; $i -lt 3; $i++) { $s += $i }; $s", "012"),
        ("$n = 0; while ($n -lt 3) { $n++ }; do { $n-- } until ($n -le 1); $n", 1),
        ("function Add-Two([int]$a, $b = 2) { return $a + $b }; Add-Two 1; Add-Two -b 10 -a '5'", [3, 15]),
        ("function Test-It { param([switch]$Force, $Name) if ($Force) { \"forced $Name\" } }; Test-It -Force -Name x", "forced x"),
        ("& { param($x) $x * 2 } 21", 42),
        ("$b = @(Get-MigrationBatch); $b.Count", 2),
        ("(Get-MigrationBatch).Status", ["Syncing", "Failed"]),
        ("(Get-MigrationBatch)[0].Identity.Name", "MigrationBatch1"),
        ("$t = Test-MigrationServerAvailability; $t -eq 'success'; $t.Result -eq 'Failed'", [True, False]),
        ("(Get-Date).AddDays(1).ToString('yyyy-MM-dd')", "2026-11-30"),
        ("(Get-Date).AddHours(1).ToUniversalTime().ToString('u')", "2026-11-30 08:18:59Z"),
        ("Get-Date -Format 'dd/MM/yyyy HH:mm'", "29/11/2026 23:18"),
        ("\"$(Get-Date)\"", "11/29/2026 23:18:59"),
        ("((Get-Date) - (Get-Date).AddMinutes(-90)).TotalHours", 1.5),
    ],
)
def test_expressions(shell: Interpreter, script: str, expected: Any) -> None:
    result = shell.evaluate(script)
    assert (result[0] if len(result) == 1 else result) == expected


def test_variables_persist_across_runs(host: FakeHost) -> None:
    shell = Interpreter(host, variables={"BatchName": "Seeded"})
    shell.run("$count = 41")
    assert shell.evaluate("$count + 1; $batchname") == [42, "Seeded"]


# -- built-in commands ------------------------------------------------------------------------------------------


def test_select_where_foreach_sort_measure(shell: Interpreter) -> None:
    assert shell.evaluate("Get-MigrationBatch | Where-Object Status -eq Failed | ForEach-Object { $_.Identity.Name }") == ["B2"]
    assert shell.evaluate("Get-MigrationBatch | ? { $_.TotalCount -gt 5 } | % Status") == ["Failed"]
    assert shell.evaluate("Get-MigrationBatch | where Status -like 'sync*' | % { $PSItem.TotalCount }") == [3]
    assert shell.evaluate("Get-MigrationBatch | Sort-Object TotalCount -Descending | Select-Object -First 1 -ExpandProperty TotalCount") == [12]
    assert shell.evaluate("3, 1, 2, 1 | sort -Unique") == [1, 2, 3]
    selected = shell.evaluate("Get-MigrationBatch | select Identity, @{n='Count'; e={ $_.TotalCount * 10 }} -Last 1")
    assert len(selected) == 1 and selected[0].properties == {"Identity": selected[0]["Identity"], "Count": 120}
    assert selected[0].type_names[0] == "Selected." + BATCH
    measure = shell.evaluate("Get-MigrationBatch | Measure-Object TotalCount -Sum -Maximum")[0]
    assert (measure["Count"], measure["Sum"], measure["Maximum"], measure["Average"]) == (2, 15.0, 12.0, None)
    assert shell.evaluate("(Get-MigrationBatch | measure).Count") == [2]
    groups = shell.evaluate("'a', 'b', 'A' | Group-Object")
    assert [(g["Name"], g["Count"]) for g in groups] == [("a", 2), ("b", 1)]


def test_default_output_uses_the_host_view(shell: Interpreter) -> None:
    assert shell.run("Get-MigrationBatch").stdout == (
        "\n"
        "Identity        Status  Total\n"
        "--------        ------  -----\n"
        "MigrationBatch1 Syncing     3\n"
        "B2              Failed     12\n"
        "\n"
    )


def test_format_table_and_list(shell: Interpreter) -> None:
    assert shell.run("Get-MigrationBatch | ft Identity, Status -AutoSize").stdout == (
        "\nIdentity        Status\n--------        ------\nMigrationBatch1 Syncing\nB2              Failed\n\n"
    )
    assert shell.run("Get-MigrationBatch | Select-Object -First 1 | fl *").stdout == (
        "\nIdentity           : MigrationBatch1\nStatus             : Syncing\nTotalCount         : 3\nNotificationEmails : {}\n\n"
    )
    assert shell.run("Get-MigrationBatch | Format-List Status").stdout == "\nStatus : Syncing\n\nStatus : Failed\n\n"
    assert shell.run("Get-MigrationBatch | ft -HideTableHeaders Status").stdout == "\nSyncing\nFailed\n\n"


def test_objects_without_view_table_or_list() -> None:
    small = PSObject(["T"], {"Name": "x", "Count": 5, "Flag": True, "When": datetime(2026, 11, 29, 23, 18, 59)})
    assert format_objects([small], None) == (
        "\nName Count Flag When\n---- ----- ---- ----\nx        5 True 11/29/2026 11:18:59 PM\n\n"
    )
    big = PSObject(["U"], {"A": 1, "B": None, "C": ["p", "q"], "D": "d", "LongerName": "e"})
    assert format_objects([big, big], None) == (
        "\nA          : 1\nB          :\nC          : {p, q}\nD          : d\nLongerName : e\n\n"
        "A          : 1\nB          :\nC          : {p, q}\nD          : d\nLongerName : e\n\n"
    )
    assert format_objects(["text", 42, True, 2.5], None) == "text\n42\nTrue\n2.5\n"
    other = PSObject(["V"], {"Name": "y"})
    assert format_objects([small, other], None).endswith("11:18:59 PM\n\n\nName\n----\ny\n\n")


def test_out_string_and_write_host(shell: Interpreter) -> None:
    assert shell.evaluate("Get-MigrationBatch | Select-Object Status | Out-String") == ["\nStatus\n------\nSyncing\nFailed\n\n"]
    outcome = shell.run("Write-Host 'Batch' 'ok' -ForegroundColor Green; Write-Host -NoNewline a; Write-Host b; 'out'; Write-Warning 'careful'")
    assert outcome.stdout == "Batch ok\nab\nout\nWARNING: careful\n"
    assert shell.evaluate("Get-MigrationBatch | Out-Null") == []


def test_get_help_forms(host: FakeHost, shell: Interpreter) -> None:
    outcome = shell.run("help New-MigrationBatch -Parameter CSVData; Get-Help Start-MigrationBatch -Full; Get-MigrationBatch -?")
    assert host.help_requests == [
        ("New-MigrationBatch", "parameter", "CSVData"),
        ("Start-MigrationBatch", "full", None),
        ("Get-MigrationBatch", "default", None),
    ]
    assert outcome.stdout.startswith("NAME\n    New-MigrationBatch\n")


# -- errors ------------------------------------------------------------------------------------------------------


def test_non_terminating_host_error_is_written_and_script_continues(shell: Interpreter) -> None:
    outcome = shell.run("Get-MigrationBatch nope\n'after'")
    assert outcome.stdout == "after\n" and outcome.exit_code == 1
    assert outcome.errors == [
        "Get-MigrationBatch : The migration batch 'nope' couldn't be found.\n"
        "At line:1 char:1\n"
        "+ Get-MigrationBatch nope\n"
        "+ ~~~~~~~~~~~~~~~~~~~~~~~\n"
        "    + CategoryInfo          : ObjectNotFound: (nope:String) [Get-MigrationBatch], ObjectNotFound\n"
        "    + FullyQualifiedErrorId : ManagementObjectNotFoundException,Get-MigrationBatch\n"
    ]
    assert shell.evaluate("$Error[0].FullyQualifiedErrorId") == ["ManagementObjectNotFoundException,Get-MigrationBatch"]


def test_error_action_stop_and_try_catch(shell: Interpreter) -> None:
    script = (
        "try { Get-MigrationBatch nope -ErrorAction Stop; 'not here' }\n"
        "catch [Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException] { \"caught: $($_.Exception.Message)\" }\n"
        "finally { 'finally' }"
    )
    outcome = shell.run(script)
    assert outcome.stdout == "caught: The migration batch 'nope' couldn't be found.\nfinally\n"
    assert outcome.errors == [] and outcome.exit_code == 0
    assert shell.run("Get-MigrationBatch nope -EA SilentlyContinue; 'quiet'").errors == []
    stopped = shell.run("$ErrorActionPreference = 'Stop'; Get-MigrationBatch nope; 'never'")
    assert stopped.stdout == "" and len(stopped.errors) == 1 and stopped.exit_code == 1


def test_terminating_host_error_ends_its_statement_only(shell: Interpreter) -> None:
    # As in PowerShell: a statement-terminating error stops its pipeline, the script goes on (exit code 1);
    # -ErrorAction Stop makes it end the script.
    outcome = shell.run("Get-MigrationStatus | ForEach-Object { 'never' }; 'next'")
    assert outcome.stdout == "next\n" and outcome.exit_code == 1
    assert "FullyQualifiedErrorId : ServiceStopping,Get-MigrationStatus" in outcome.errors[0]
    stopped = shell.run("Get-MigrationStatus -ErrorAction Stop; 'never'")
    assert stopped.stdout == "" and len(stopped.errors) == 1
    assert shell.run("try { Get-MigrationStatus } catch { $_.CategoryInfo.Category }").stdout == "InvalidOperation\n"


def test_throw_and_rethrow(shell: Interpreter) -> None:
    outcome = shell.run('throw "Batch not ready"')
    assert outcome.errors == [
        "Batch not ready\nAt line:1 char:1\n+ throw \"Batch not ready\"\n+ ~~~~~~~~~~~~~~~~~~~~~~~\n"
        "    + CategoryInfo          : OperationStopped: (Batch not ready:String) [], RuntimeException\n"
        "    + FullyQualifiedErrorId : Batch not ready\n"
    ]
    assert shell.run("try { try { throw 'inner' } catch { throw } } catch { 'outer ' + $_ }").stdout == "outer inner\n"
    with pytest.raises(InvocationFailed):
        shell.evaluate("Remove-MigrationBatch B1 -ErrorAction Stop")


def test_runtime_error_ends_only_its_statement(shell: Interpreter) -> None:
    outcome = shell.run("$x = $null; $x.ToUpper(); 'next'")
    assert outcome.stdout == "next\n"
    assert "You cannot call a method on a null-valued expression." in outcome.errors[0]
    assert "FullyQualifiedErrorId : InvokeMethodOnNull" in outcome.errors[0]


def test_write_error(shell: Interpreter) -> None:
    outcome = shell.run("Write-Error 'bad row'; 'continues'")
    assert outcome.stdout == "continues\n"
    assert outcome.errors[0].startswith("Write-Error : bad row\nAt line:1 char:1\n")
    assert "FullyQualifiedErrorId : Microsoft.PowerShell.Commands.WriteErrorException\n" in outcome.errors[0]
    assert shell.run("try { Write-Error 'x' -ErrorAction Stop } catch { 'caught' }").stdout == "caught\n"


def test_unknown_command(host: FakeHost, shell: Interpreter) -> None:
    outcome = shell.run("Get-Mailbox -ResultSize Unlimited; 'never'")
    assert outcome.stdout == "" and outcome.exit_code == 1
    assert outcome.errors[0].startswith("The term 'Get-Mailbox' is not recognized as a cmdlet supported by this Mailshift service.")
    assert "CategoryInfo          : ObjectNotFound: (Get-Mailbox:String) [], CommandNotFound" in outcome.errors[0]
    assert "FullyQualifiedErrorId : CommandNotFoundException\n" in outcome.errors[0]
    with pytest.raises(CommandNotFound):
        shell.evaluate("Set-Mailbox x")
    assert host.calls == []


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("Invoke-Expression 'Get-MigrationBatch'", "Invoke-Expression is not allowed in a Mailshift session"),
        ("iex 'x'", "Invoke-Expression is not allowed in a Mailshift session"),
        ("Start-Process calc.exe", "Start-Process is not allowed in a Mailshift session"),
        ("[System.Diagnostics.Process]::Start('calc')", "[System.Diagnostics.Process]::Start is not allowed"),
        ("[Environment]::UserName", "[Environment]::UserName is not allowed"),
        ("New-Object System.Net.WebClient", "New-Object is not allowed"),
        ("Get-ChildItem C:\\", "Get-ChildItem 'C:\\' is not allowed"),
        ("'x' | Out-File C:\\x.txt", "Out-File is not allowed"),
        ("'x' > C:\\x.txt", "Redirecting output to a file is not allowed"),
        ("Get-Credential", "the service cannot prompt for credentials"),
        ("& .\\migrate.ps1", "Running scripts or programs ('.\\migrate.ps1') is not allowed"),
        (". C:\\scripts\\lib.ps1", "Running scripts or programs"),
        ("C:\\tools\\x.exe /q", "Running scripts or programs ('C:\\tools\\x.exe') is not allowed"),
        ("[Microsoft.Exchange.Data.Unlimited]'5'", "The type [Microsoft.Exchange.Data.Unlimited] is not available"),
        ("switch ($x) { 1 { 'a' } }", "The 'switch' statement is not supported"),
    ],
)
def test_refusals(host: FakeHost, shell: Interpreter, script: str, message: str) -> None:
    outcome = shell.run(script + "; 'after'")
    assert outcome.exit_code == 1 and outcome.stdout == ""
    assert message in outcome.errors[0]
    with pytest.raises(ScriptRefused) as refused:
        shell.evaluate(script)
    assert refused.value.category == "PermissionDenied"
    assert host.calls == []


@pytest.mark.parametrize(
    ("script", "line", "column", "error_id"),
    [
        ("if ($x -eq 1) {\n  'a'\n", 1, 15, "MissingEndCurlyBrace"),
        ("Get-MigrationBatch\n$x = 'unterminated", 2, 6, "TerminatorExpectedAtEndOfString"),
        ("$x = (1 + 2", 1, 12, "MissingEndParenthesisInExpression"),
        ("$a -eq 1 2", 1, 10, "UnexpectedToken"),
    ],
)
def test_parse_errors_carry_line_and_column(shell: Interpreter, script: str, line: int, column: int, error_id: str) -> None:
    with pytest.raises(ParseError) as raised:
        parse(script)
    error = raised.value
    assert isinstance(error, PSParseError)
    assert (error.line, error.column, error.error_id) == (line, column, error_id)
    assert f"At line:{line} char:{column}" in error.message
    outcome = shell.run(script)
    assert outcome.exit_code == 1 and f"FullyQualifiedErrorId : {error_id}" in outcome.errors[0]
    assert "CategoryInfo          : ParserError: (:) [], ParentContainsErrorRecordException" in outcome.errors[0]


def test_exit_code(shell: Interpreter) -> None:
    assert shell.run("'a'; exit 3; 'b'").exit_code == 3
    assert shell.run("'a'").exit_code == 0


def test_expandable_strings_with_method_calls(shell: Interpreter) -> None:
    script = '$b = Get-MigrationBatch | Select-Object -First 1; "$($b.Identity.Name) is $($b.Status.ToUpper()) since $((Get-Date).ToString(\'yyyy-MM-dd\'))"'
    assert shell.evaluate(script) == ["MigrationBatch1 is SYNCING since 2026-11-29"]


def test_dates_print_like_powershell(shell: Interpreter) -> None:
    assert shell.run("Get-Date").stdout == "Sunday, November 29, 2026 11:18:59 PM\n"
    assert shell.run("(Get-Date).ToString()").stdout == "11/29/2026 11:18:59 PM\n"


def test_error_and_out_variables_and_status(shell: Interpreter) -> None:
    result = shell.evaluate(
        "Get-MigrationBatch nope -ErrorAction SilentlyContinue -ErrorVariable bad; $ok = $?\n"
        "Get-MigrationBatch -OutVariable got | Out-Null\n"
        "$bad.Count; $bad[0].Exception.Message; $ok; $got.Count"
    )
    assert result == [1, "The migration batch 'nope' couldn't be found.", False, 2]


def test_format_objects_forced_list_and_hashtable() -> None:
    obj = PSObject(["T"], {"Name": "x", "Count": 5})
    assert format_objects([obj], None, "list") == "\nName  : x\nCount : 5\n\n"
    assert format_objects([{"Identity": "B1"}], None) == (
        "\nName                           Value\n----                           -----\nIdentity                       B1\n\n"
    )


def test_out_string_stream_and_sorting_by_calculated_key(shell: Interpreter) -> None:
    assert shell.evaluate("'b', 'a' | Out-String -Stream") == ["b", "a"]
    script = "Get-MigrationBatch | Sort-Object @{Expression = 'TotalCount'; Descending = $true} | ForEach-Object { $_.Identity.Name }"
    assert shell.evaluate(script) == ["B2", "MigrationBatch1"]
    assert shell.evaluate("Get-MigrationBatch | Group-Object Status -NoElement | Sort-Object Name | % Name") == ["Failed", "Syncing"]


def test_builtin_binding_errors(shell: Interpreter) -> None:
    outcome = shell.run("Get-MigrationBatch | Select-Object -Bogus 1; 'next'")
    assert outcome.stdout == "next\n"
    assert "A parameter cannot be found that matches parameter name 'Bogus'." in outcome.errors[0]
    assert "FullyQualifiedErrorId : NamedParameterNotFound,Select-Object" in outcome.errors[0]


def test_runaway_recursion_is_a_script_error(shell: Interpreter) -> None:
    outcome = shell.run("function Loop { Loop }; Loop; 'never'")
    assert outcome.stdout == "" and "FullyQualifiedErrorId : CallDepthOverflow" in outcome.errors[0]
    assert shell.run("[char]'ab'; 'next'").stdout == "next\n"


def test_seed_000_time_zone_listing_and_nothing_else(shell: Interpreter) -> None:
    outcome = shell.run('Get-ChildItem "HKLM:\\Software\\Microsoft\\Windows NT\\CurrentVersion\\Time zones" | FL pschildname')
    assert outcome.errors == []
    assert "PSChildName : Pacific Standard Time\n" in outcome.stdout
    assert outcome.stdout.count("PSChildName : ") > 100
    for path in ("C:\\Windows", "/etc", "HKLM:\\Software\\Microsoft", "Env:"):
        refused = shell.run(f'Get-ChildItem "{path}"')
        assert refused.exit_code == 1 and "not allowed in a Mailshift session" in refused.errors[0], path
