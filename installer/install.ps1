<#
.SYNOPSIS
Install Studio on Windows into its own virtual environment, put `studio` on the user's PATH
and add a Start-menu shortcut. Safe to re-run.

.EXAMPLE
.\installer\install.ps1
.\installer\install.ps1 -Offline studio-bundle.tar
.\installer\install.ps1 -ModelsFrom D:\models
.\installer\install.ps1 -Uninstall [-RemoveModels]
#>
[CmdletBinding()]
param(
    [switch]$Dev,
    [string]$Offline = "",
    [string[]]$Models = @(),
    [string]$ModelsFrom = "",
    [string]$CpuTorch = "",
    [string]$Prefix = "$env:LOCALAPPDATA\studio",
    [string]$Python = "",
    [switch]$NoDesktop,
    [switch]$NoDeps,
    [switch]$Uninstall,
    [switch]$RemoveModels
)
$ErrorActionPreference = "Stop"
$Source = Split-Path -Parent $PSScriptRoot
$Venv = if ($Dev) { Join-Path $Source ".venv" } else { Join-Path $Prefix "venv" }
$BinDir = Join-Path $Prefix "bin"
$Record = Join-Path $Prefix "installed-files.txt"
$Shortcut = Join-Path ([Environment]::GetFolderPath("Programs")) "Studio.lnk"

function Say($message) { Write-Host "==> $message" }
function Fail($message) { Write-Error "install.ps1: $message"; exit 2 }
function Invoke-Checked { & $args[0] $args[1..($args.Count - 1)]; if ($LASTEXITCODE) { exit $LASTEXITCODE } }

function Find-Python {
    foreach ($candidate in @($Python, "py -3.11", "python3.11", "python")) {
        if (-not $candidate) { continue }
        $exe, $rest = $candidate -split " ", 2
        if (-not (Get-Command $exe -ErrorAction SilentlyContinue)) { continue }
        $probe = @($rest) + @("-c", "import sys; sys.exit(sys.version_info < (3, 11))") | Where-Object { $_ }
        & $exe @probe 2>$null
        if ($LASTEXITCODE -eq 0) { return @($exe) + @($rest | Where-Object { $_ }) }
    }
    Fail "Python 3.11 or newer is needed: install it from python.org, or pass -Python EXE"
}

function Install-Studio {
    if ($Offline -and $Models) { Fail "-Offline and -Models exclude each other: put the models in the bundle" }
    if ($ModelsFrom -and -not (Test-Path $ModelsFrom -PathType Container)) { Fail "-ModelsFrom: no such folder: $ModelsFrom" }
    $py = Find-Python
    if (Test-Path "$Venv\Scripts\python.exe") { Say "Reusing the environment in $Venv" }
    else {
        Say "Creating the environment in $Venv"
        New-Item -ItemType Directory -Force $Prefix | Out-Null
        Invoke-Checked $py[0] @($py[1..9] | Where-Object { $_ }) -m venv $Venv
    }
    $pip = @("$Venv\Scripts\python.exe", "-m", "pip", "install", "--disable-pip-version-check")
    if ($NoDeps) { $pip += "--no-deps" }
    if ($Offline) {
        $bundle = $Offline
        if (Test-Path $Offline -PathType Leaf) {
            $bundle = Join-Path ([IO.Path]::GetTempPath()) ("studio-" + [guid]::NewGuid())
            New-Item -ItemType Directory $bundle | Out-Null
            Invoke-Checked tar -xf $Offline -C $bundle
            $bundle = (Get-ChildItem $bundle | Select-Object -First 1).FullName
        }
        Say "Verifying the bundle"
        Invoke-Checked $py[0] @($py[1..9] | Where-Object { $_ }) "$PSScriptRoot\bundle.py" verify $bundle
        Say "Installing Studio from the bundle (no network)"
        $env:PIP_CONFIG_FILE = "NUL"; $env:PIP_NO_INDEX = "1"
        Invoke-Checked $pip[0] ($pip[1..99] + @("--no-index", "--find-links", "$bundle\wheels", "studio"))
        if ((Test-Path "$bundle\models") -and -not $ModelsFrom) { $script:ModelsFrom = "$bundle\models" }
    }
    else {
        $target = if ($Dev) { @("-e", "$Source[dev]") } else { @($Source) }
        if ($CpuTorch) { Invoke-Checked $pip[0] ($pip[1..99] + @("--index-url", $CpuTorch, "torch", "torchvision")) }
        Say "Installing Studio"
        Invoke-Checked $pip[0] ($pip[1..99] + @("-c", "$PSScriptRoot\constraints.txt") + $target)
    }
    if ($ModelsFrom) { Say "Importing models from $ModelsFrom"; Invoke-Checked "$Venv\Scripts\studio.exe" models import $ModelsFrom }
    foreach ($id in $Models) { Invoke-Checked "$Venv\Scripts\studio.exe" models download $id }

    $installed = @($Venv)
    if (-not $Dev) {
        New-Item -ItemType Directory -Force $BinDir | Out-Null
        Set-Content "$BinDir\studio.cmd" "@`"$Venv\Scripts\studio.exe`" %*"
        $installed += "$BinDir\studio.cmd"
        $userPath = [Environment]::GetEnvironmentVariable("Path", "User")
        if (($userPath -split ";") -notcontains $BinDir) {
            [Environment]::SetEnvironmentVariable("Path", "$userPath;$BinDir", "User")
            Say "Added $BinDir to your PATH (open a new terminal to use it)"
        }
    }
    if (-not $NoDesktop -and -not $Dev) {
        $shell = New-Object -ComObject WScript.Shell
        $link = $shell.CreateShortcut($Shortcut)
        $link.TargetPath = "$Venv\Scripts\studio-gui.exe"
        $link.IconLocation = "$Source\resources\studio.ico"
        $link.Save()
        $installed += $Shortcut
    }
    Set-Content $Record $installed
    Say "Studio is installed. Start it from the Start menu or with: studio"
}

function Uninstall-Studio {
    if (-not (Test-Path $Record)) { Fail "nothing to uninstall: $Record not found" }
    $modelsDir = ""
    if ($RemoveModels) {
        $modelsDir = & "$Venv\Scripts\python.exe" -c "from studio.core.paths import models_dir; print(models_dir())"
    }
    foreach ($path in Get-Content $Record) {
        if ($path) { Say "Removing $path"; Remove-Item -Recurse -Force -ErrorAction SilentlyContinue $path }
    }
    Remove-Item -Force $Record
    if ($modelsDir) { Say "Removing models in $modelsDir"; Remove-Item -Recurse -Force $modelsDir }
    Say "Studio is uninstalled. Your images, settings and models were left alone unless -RemoveModels was given."
}

if ($Uninstall) { Uninstall-Studio } else { Install-Studio }
