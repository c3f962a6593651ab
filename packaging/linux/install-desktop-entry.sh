#!/bin/sh
# Add (or with --remove, take away) this unpacked Caption Overlay in the current user's application
# menu. Run it from the folder the .tar.gz was unpacked into; nothing outside ~/.local is touched.
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
APP_ID="app.captionoverlay.CaptionOverlay"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
DESKTOP="$DATA/applications/$APP_ID.desktop"

if [ "${1:-}" = "--remove" ]; then
    rm -f "$DESKTOP"
    find "$DATA/icons/hicolor" -name "$APP_ID.*" -delete 2>/dev/null || true
    echo "Removed $DESKTOP"
    exit 0
fi

[ -x "$HERE/caption-overlay" ] || { echo "caption-overlay not found next to this script" >&2; exit 1; }
mkdir -p "$DATA/applications"
# Exec must be absolute here: this copy is not on PATH. Quote it for paths with spaces.
sed -e "s|^Exec=.*|Exec=\"$HERE/caption-overlay\"|" "$HERE/share/applications/$APP_ID.desktop" > "$DESKTOP"
for dir in "$HERE"/share/icons/hicolor/*/apps; do
    size="$(basename "$(dirname "$dir")")"
    mkdir -p "$DATA/icons/hicolor/$size/apps"
    cp "$dir"/"$APP_ID".* "$DATA/icons/hicolor/$size/apps/"
done
command -v update-desktop-database >/dev/null && update-desktop-database -q "$DATA/applications" || true
echo "Added $DESKTOP"
