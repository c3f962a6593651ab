; Inno Setup 6 script for Caption Overlay: a per-user install that needs no administrator rights.
;
; Built by packaging/windows/build.py, which passes the values below from app/__init__.py:
;   ISCC.exe /DAppName=... /DAppVersion=... /DAppVersionQuad=... /DAppExe=... /DAppDataDir=...
;            /DAppPublisher=... /DAppURL=... /DSourceDir=<PyInstaller dist folder> /DOutputDir=...
;            [/DSignTool=signcmd]   ; only when signing credentials are present
; Do not run ISCC on this file by hand without those defines: the #error lines below stop it.

#ifndef AppName
  #error AppName not defined: build with packaging/windows/build.py
#endif
#ifndef SourceDir
  #error SourceDir not defined: build with packaging/windows/build.py
#endif

[Setup]
; Fixed forever: Windows recognises upgrades and the uninstaller by this id. Never change it.
AppId={{6E3E0CE0-AB15-4666-8767-925523D8BB71}
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher={#AppPublisher}
AppPublisherURL={#AppURL}
AppSupportURL={#AppURL}
VersionInfoVersion={#AppVersionQuad}
VersionInfoProductName={#AppName}
; Per-user: installs to %LOCALAPPDATA%\Programs\<name>, no UAC prompt, Start menu of this user.
PrivilegesRequired=lowest
DefaultDirName={autopf}\{#AppName}
DisableProgramGroupPage=yes
DisableDirPage=auto
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
WizardStyle=modern
SetupIconFile=..\..\resources\caption-overlay.ico
UninstallDisplayIcon={app}\{#AppExe}
UninstallDisplayName={#AppName}
OutputDir={#OutputDir}
OutputBaseFilename=CaptionOverlay-{#AppVersion}-setup
Compression=lzma2/max
SolidCompression=yes
; A running copy holds its files open: ask it to close (Restart Manager), reopen it afterwards.
CloseApplications=yes
RestartApplications=no
#ifdef SignTool
SignTool=signcmd
SignedUninstaller=yes
#endif

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "startatlogin"; Description: "Start {#AppName} when I sign in to Windows"; GroupDescription: "Start-up:"; Flags: unchecked

[Files]
; The whole PyInstaller one-dir bundle (caption-overlay.exe, caption-overlay-cli.exe, _internal\).
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; Files of an older version that a newer bundle no longer ships (libraries move between releases).
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExe}"; Comment: "Live captions in an always-on-top overlay"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Registry]
; Start at sign-in for this user only; removed again by the uninstaller.
Root: HKCU; Subkey: "Software\Microsoft\Windows\CurrentVersion\Run"; ValueType: string; ValueName: "{#AppName}"; ValueData: """{app}\{#AppExe}"""; Tasks: startatlogin; Flags: uninsdeletevalue

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[Code]
{ Uninstall offers to remove what the app stored for this user: settings, transcripts and logs
  (all under %LOCALAPPDATA%\<app id>) and the API key in Windows Credential Manager.
  The default answer is No, and a silent uninstall keeps everything (upgrades uninstall silently). }

procedure RemoveUserData();
var
  ResultCode: Integer;
begin
  DelTree(ExpandConstant('{localappdata}\{#AppDataDir}'), True, True, True);
  { keyring's Windows backend stores the key under the service name; older entries may use
    "<user>@<service>". cmdkey reports an error for a missing one, which is fine. }
  Exec(ExpandConstant('{sys}\cmdkey.exe'), '/delete:{#AppDataDir}', '', SW_HIDE,
       ewWaitUntilTerminated, ResultCode);
  Exec(ExpandConstant('{sys}\cmdkey.exe'), '/delete:assemblyai-api-key@{#AppDataDir}', '', SW_HIDE,
       ewWaitUntilTerminated, ResultCode);
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if (CurUninstallStep = usPostUninstall) and (not UninstallSilent()) then
  begin
    if MsgBox('Also remove your {#AppName} settings, saved transcripts and the stored API key?' + #13#10#13#10 +
              'Choose No to keep them for a later reinstall.',
              mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES then
      RemoveUserData();
  end;
end;
