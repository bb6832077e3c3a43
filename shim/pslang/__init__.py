"""A restricted PowerShell interpreter: the migration scripts admins already have, run by the service.

A door (WinRS, PSRP, REST, console) hands over script text; :func:`parse` builds the syntax tree
with a hand-written parser that follows PowerShell's split between command mode and expression
mode; :class:`Interpreter` evaluates it, calling the :class:`shim.host.CommandHost` for every
cmdlet it does not implement itself, and :func:`format_objects` prints output objects as
Windows PowerShell 5.1 does.

Supported
---------
* Commands with every argument form: ``-Name value``, ``-Name:value``, ``-Switch``,
  ``-Switch:$false``, bare words (``imap.contoso.edu``; ``143`` is an Int32), quoted strings,
  ``$var``, ``$var.Prop``, ``(pipeline)``, ``$(...)``, ``@(...)``, ``@{...}``, ``{ script block }``,
  comma lists as one array argument (``"Deleted Items","Junk Mail"``, ``Identity, Status``),
  splatting ``@params`` (hashtable → named, array → positional), ``-?``, ``--``. Arguments
  reach the host as a flat list of ``ParameterToken`` and values; the host's binder pairs them.
* Pipelines (downstream host cmdlets are invoked once per input object), ``;`` and new lines
  between statements, backtick line continuation, ``#`` and ``<# #>`` comments, ``> $null``,
  ``2>$null``, ``2>&1``, ``$null = ...``, ``[void]``.
* Strings: single-quoted (``''``), double-quoted with ``$var``, ``${name}``, ``$(...)``
  (``"$var.Prop"`` expands only ``$var``, as PowerShell does), backtick escapes
  (`` `n `t `r `0 `a `b `f `v `e `" `$ `` and a doubled backtick), ``""`` inside, here-strings
  ``@" "@`` and ``@' '@``.
* Values: numbers (int, double, hex, ``KB``/``MB``/``GB``/``TB``/``PB``, ``L``/``D``),
  ``$true``/``$false``/``$null``, arrays, ranges ``1..5``, hashtables (ordered, keys
  case-insensitive; ``[ordered]``), ``[pscustomobject]@{...}``, variables with ``=`` ``+=``
  ``-=`` ``*=`` ``/=`` ``%=`` and ``++``/``--``, scopes ``$script:``/``$global:``, property
  access with member enumeration over arrays, indexing (negative indexes, slices), ``$Error``,
  ``$?``, ``$Matches``, ``$PSVersionTable``, ``$ErrorActionPreference``, ``$WarningPreference``,
  ``$VerbosePreference``.
* Operators: ``-eq -ne -gt -ge -lt -le -like -notlike -match -notmatch -contains -notcontains
  -in -notin -replace -split -join -is -isnot -as`` (case-insensitive; ``-c``/``-i`` forms),
  ``-and -or -xor -not !``, ``-band -bor -bxor -bnot``, ``+ - * / %`` (string and array
  concatenation and repetition, date arithmetic), ``-f`` (``{0}``, ``{0,-10}``, ``{0:N2}``,
  ``{0:yyyy-MM-dd}``), ``..``, unary ``,``. An array on the left of a comparison filters it.
  A PSObject with ``text`` compares to a string by that text.
* Casts: ``[int] [long] [double] [decimal] [string] [bool] [switch] [datetime] [timespan]
  [char] [guid] [byte[]] [array] [string[]] [int[]] [object[]] [hashtable] [ordered]
  [pscustomobject] [psobject] [object] [regex] [scriptblock] [void]``.
* Methods: strings (``ToUpper ToLower Trim TrimStart TrimEnd Split Replace StartsWith EndsWith
  Contains IndexOf LastIndexOf Substring PadLeft PadRight Equals ToCharArray ToString``, ``.Length``),
  dates (``AddDays AddHours AddMinutes AddSeconds AddMilliseconds AddMonths AddYears
  ToUniversalTime ToLocalTime ToString(format) ToShortDateString ToLongDateString
  ToShortTimeString ToLongTimeString Subtract``, ``.Year`` ... ``.DayOfWeek``), TimeSpans
  (``.TotalMinutes`` ...), arrays (``Contains IndexOf``, ``.Count``), hashtables (``ContainsKey
  ContainsValue Add Remove Clear GetEnumerator Clone``, ``.Keys .Values .Count``),
  ``ToString() Equals() GetType()`` on anything, ``.Invoke()`` on script blocks. The only
  static member is ``[System.IO.File]::ReadAllBytes(path)`` (also ``[IO.File]``), which reads
  through ``host.read_import_file``.
* Statements: ``if/elseif/else``, ``foreach``, ``for``, ``while``, ``do/while``, ``do/until``,
  ``break``, ``continue``, ``try/catch [Type]/finally`` (``$_``, ``$_.Exception.Message``,
  ``$_.FullyQualifiedErrorId``, ``$_.CategoryInfo``), ``throw``, ``return``, ``exit n``,
  ``function Name { param(...) }`` and ``function Name($a, $b)`` (named, prefix, positional
  and switch parameters, defaults, type constraints, ``$args``, ``$input``), ``& { }``.
* Built-in commands (and aliases): Select-Object (select), Where-Object (where, ?),
  ForEach-Object (foreach, %), Sort-Object (sort), Measure-Object (measure), Group-Object
  (group), Format-Table (ft), Format-List (fl), Out-String, Out-Null, Out-Default/Out-Host,
  Write-Host, Write-Output (echo, write), Write-Warning, Write-Error, Write-Verbose,
  Write-Debug, Write-Information, Write-Progress, Get-Date, Get-Content (gc, cat, type; via
  ``host.read_import_file``), Get-Help (help, man; via ``host.help``), Get-Command (gcm),
  Clear-Host (cls, clear).
* Common parameters ``-ErrorAction``/``-EA`` (names, ``0``-``5``), ``-WarningAction``,
  ``-ErrorVariable``, ``-OutVariable``, ``-Verbose``, ``-Debug``, ``-OutBuffer``,
  ``-InformationAction``, ``-WarningVariable``, ``-InformationVariable``, ``-PipelineVariable``
  (exact, alias, or unique prefix of three letters or more) are stripped before the host is
  called. A non-terminating host error is written and the script goes on; a terminating one
  (binding errors, unknown commands, expression failures) ends its statement, as in PowerShell.
  ``throw``, refusals, and any error under ``-ErrorAction Stop`` /
  ``$ErrorActionPreference = 'Stop'`` end the script unless a ``try``/``catch`` takes it.
* Output: objects go to Out-Default at the end of each top-level statement; see
  :mod:`shim.pslang.formatting`.

Limits (:mod:`shim.pslang.limits`)
----------------------------------
A script can neither hang nor exhaust the service. Nesting deeper than 32 levels is a parse error
(``ScriptNestedTooDeeply``) and a backtick at the very end is PowerShell's ``IncompleteString``;
a run ends after 1,000,000 steps (statements, expressions, loop turns, large copies) or 20 s of
thread CPU time, or once it has printed 64 Mi characters; calls nest 50 deep (PowerShell's
``CallDepthOverflow``); strings hold 16 Mi characters and arrays and ranges 1,000,000 elements
(``StringTooLong``, ``ArrayTooLarge``, PowerShell's "The range is too large."); integer results
past Int64 become doubles. Each answer is an error record; the step, CPU and output limits
cannot be caught by ``try``/``catch``.

Refused (ScriptRefused, category PermissionDenied)
-------------------------------------------------
Any other .NET static member or type (``[System.Diagnostics.Process]::Start``,
``[System.Text.Encoding]::UTF8``, ``[Math]::Round``, casts to unknown types), Invoke-Expression,
Invoke-Command, Start-Process, Start-Job, New-Object, Add-Type, Import-Module, web requests,
WMI/CIM, file-system commands (Get-ChildItem, Get-Item, Set-Content, Add-Content, Out-File,
Remove-Item, New-Item, Copy-Item, Move-Item, Rename-Item, Set-Location, Export-Csv,
Export-Clixml, Import-Clixml, Tee-Object, Test-Path), Set-Variable/New-Variable,
Get-Credential, running script files or programs (``& .\\x.ps1``, ``. .\\x.ps1``,
``C:\\x.exe``), redirection to files, changing ``$env:`` variables, and the ``switch``,
``trap``, ``class``, ``enum``, ``using``, ``workflow``, ``data`` and ``filter`` statements.
A command that is neither built in nor known to ``host.resolve`` is a ``CommandNotFound``
error; nothing unknown ever succeeds silently (Get-Member, Start-Sleep, Import-Csv and the
session preludes such as New-PSSession are not built in: they work only if the host
implements them). ``$env:`` variables read as ``$null``.
"""

from shim.pslang.ast import Script
from shim.pslang.formatting import format_objects
from shim.pslang.interpreter import Interpreter
from shim.pslang.parser import parse
from shim.pslang.records import PSParseError, format_error

__all__ = ["Interpreter", "PSParseError", "Script", "format_error", "format_objects", "parse"]
