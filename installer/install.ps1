<#
.SYNOPSIS
Install Studio on Windows into its own virtual environment, put `studio` on the user's PATH
and add a Start-menu shortcut. Safe to re-run. Run from an unpacked offline bundle
(studio-bundle\installer\install.ps1), it installs that bundle.

.DESCRIPTION
Exit codes: 0 installed, 2 bad arguments or a refused bundle, 4 installed but some models were
refused or not downloaded, other: the step that failed.

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
    [string[]]$ModelsFrom = @(),
    [ValidateSet("auto", "cpu", "cuda")][string]$Torch = "auto",
    [string]$CudaTorch = "https://download.pytorch.org/whl/cu130",
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
$script:ModelFailures = $false

function Say($message) { Write-Host "==> $message" }
function Fail($message) { Write-Host "install.ps1: $message" -ForegroundColor Red; exit 2 }
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

# Remember what the installer added, once each, for -Uninstall (kept across re-runs).
function Add-Record($path) {
    New-Item -ItemType Directory -Force $Prefix | Out-Null
    $known = if (Test-Path $Record) { @(Get-Content $Record) } else { @() }
    if ($known -notcontains $path) { Add-Content $Record $path }
}

# Unpack (a tar) and verify the bundle before anything is installed; returns its folder.
function Open-Bundle($py) {
    $bundle = $Offline
    if (Test-Path $Offline -PathType Leaf) {
        $script:Unpacked = Join-Path ([IO.Path]::GetTempPath()) ("studio-" + [guid]::NewGuid())
        New-Item -ItemType Directory $script:Unpacked | Out-Null
        Say "Unpacking $Offline"
        Invoke-Checked tar -xf $Offline -C $script:Unpacked
        $bundle = Join-Path $script:Unpacked "studio-bundle"
    }
    Say "Verifying the bundle"
    & $py[0] @($py[1..9] | Where-Object { $_ }) "$PSScriptRoot\bundle.py" verify $bundle
    if ($LASTEXITCODE) { Fail "refusing to install from ${Offline}: it is not the bundle that was built" }
    return $bundle
}

function Install-Torch($pip) {
    $gpu = (Get-Command nvidia-smi -ErrorAction SilentlyContinue) -and ((& nvidia-smi -L 2>$null) -ne $null)
    if ($Torch -eq "cpu" -or ($Torch -eq "auto" -and -not $gpu)) { return }  # PyPI's Windows build is the CPU one
    Say "Installing torch with CUDA from $CudaTorch"
    & $pip[0] ($pip[1..99] + @("-c", "$PSScriptRoot\constraints.txt", "--index-url", $CudaTorch, "torch", "torchvision"))
    if ($LASTEXITCODE) {
        if ($Torch -eq "cuda") { Fail "the CUDA build of torch could not be installed from $CudaTorch" }
        Say "The CUDA build is not available: installing the standard (CPU) build of torch instead"
    }
}

function Install-Offline($pip, $bundle) {
    Say "Installing Studio from the bundle (no network)"
    $saved = @{}
    foreach ($name in @("PIP_CONFIG_FILE", "PIP_NO_INDEX", "HTTP_PROXY", "HTTPS_PROXY")) { $saved[$name] = [Environment]::GetEnvironmentVariable($name) }
    $env:PIP_CONFIG_FILE = "nul"; $env:PIP_NO_INDEX = "1"  # "nul" is os.devnull: pip reads no config
    $env:HTTP_PROXY = "http://127.0.0.1:9"; $env:HTTPS_PROXY = "http://127.0.0.1:9"
    try {
        $offline = @("--isolated", "--no-index", "--find-links", "$bundle\wheels")
        foreach ($wheel in Get-ChildItem "$bundle\wheels\studio-*.whl") {
            Invoke-Checked $pip[0] ($pip[1..99] + $offline + @($wheel.FullName))
            # the same version from a newer bundle must still replace the installed Studio
            Invoke-Checked $pip[0] ($pip[1..99] + $offline + @("--no-deps", "--force-reinstall", $wheel.FullName))
        }
    }
    finally { foreach ($name in $saved.Keys) { [Environment]::SetEnvironmentVariable($name, $saved[$name]) } }
}

# A file the Studio wheel installs into <venv>\share\studio, or the checkout's copy.
function Get-Resource($name) {
    $installed = Join-Path $Venv "share\studio\$name"
    if (Test-Path $installed) { return $installed } else { return Join-Path $Source "resources\$name" }
}

function Install-Studio {
    if ($Offline -and $Models) { Fail "-Offline and -Models exclude each other: put the models in the bundle" }
    if ($Offline -and $Dev) { Fail "-Offline and -Dev exclude each other" }
    if ($Offline -and -not (Test-Path $Offline)) { Fail "-Offline: no such bundle: $Offline" }
    foreach ($dir in $ModelsFrom) { if (-not (Test-Path $dir -PathType Container)) { Fail "-ModelsFrom: no such folder: $dir" } }
    $py = Find-Python
    $modelDirs = @($ModelsFrom)
    if ($Offline) {
        $bundle = Open-Bundle $py
        if (Test-Path "$bundle\models") { $modelDirs += "$bundle\models" }
    }
    if (Test-Path "$Venv\Scripts\python.exe") { Say "Reusing the environment in $Venv" }
    else {
        Say "Creating the environment in $Venv"
        New-Item -ItemType Directory -Force $Prefix | Out-Null
        Invoke-Checked $py[0] @($py[1..9] | Where-Object { $_ }) -m venv $Venv
    }
    Add-Record $Venv
    $pip = @("$Venv\Scripts\python.exe", "-m", "pip", "install", "--disable-pip-version-check")
    if ($NoDeps) { $pip += "--no-deps" }
    if ($Offline) { Install-Offline $pip $bundle }
    else {
        $target = if ($Dev) { @("-e", "$Source[dev]") } else { @($Source) }
        if (-not $NoDeps) { Install-Torch $pip }
        Say "Installing Studio"
        Invoke-Checked $pip[0] ($pip[1..99] + @("-c", "$PSScriptRoot\constraints.txt") + $target)
    }

    if (-not $Dev) {
        New-Item -ItemType Directory -Force $BinDir | Out-Null
        Set-Content "$BinDir\studio.cmd" "@`"$Venv\Scripts\studio.exe`" %*"
        Add-Record "$BinDir\studio.cmd"
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
        $link.IconLocation = Get-Resource "studio.ico"
        $link.Save()
        Add-Record $Shortcut
    }
    # Model problems do not undo the install: they are reported, and the exit code says so.
    foreach ($dir in $modelDirs) {
        Say "Importing models from $dir"
        & "$Venv\Scripts\studio.exe" models import $dir
        if ($LASTEXITCODE) { $script:ModelFailures = $true }
    }
    foreach ($id in $Models) {
        & "$Venv\Scripts\studio.exe" models download $id
        if ($LASTEXITCODE) { $script:ModelFailures = $true }
    }
    Say "Studio is installed. Start it from the Start menu or with: studio"
    if ($script:ModelFailures) { Write-Host "install.ps1: some models were refused or not downloaded (see above)"; exit 4 }
}

function Uninstall-Studio {
    if (-not (Test-Path $Record)) { Fail "nothing to uninstall: $Record not found" }
    $modelsDir = ""
    if ($RemoveModels) {
        $modelsDir = & "$Venv\Scripts\python.exe" -I -c "from studio.core.paths import models_dir; print(models_dir())"
    }
    foreach ($path in Get-Content $Record) {
        if ($path) { Say "Removing $path"; Remove-Item -Recurse -Force -ErrorAction SilentlyContinue $path }
    }
    Remove-Item -Force $Record
    if ($modelsDir) { Say "Removing models in $modelsDir"; Remove-Item -Recurse -Force $modelsDir }
    Say "Studio is uninstalled. Your images, settings and models were left alone unless -RemoveModels was given."
}

if (-not $Offline -and -not $Uninstall -and -not $Dev -and (Test-Path (Join-Path $Source "manifest.json"))) {
    $Offline = $Source  # run from inside an unpacked bundle
}
try {
    if ($Uninstall) { Uninstall-Studio } else { Install-Studio }
}
finally {
    if ($script:Unpacked) { Remove-Item -Recurse -Force -ErrorAction SilentlyContinue $script:Unpacked }
}
