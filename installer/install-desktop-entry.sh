#!/usr/bin/env bash
# Add AccelStudio to the desktop's application menu for the current user (no root needed).
# Run it from the unpacked bundle: `bash AccelStudio/install-desktop-entry.sh`. `--uninstall` removes the entry.
# Copies accelstudio.desktop (with this bundle's path filled in) to ~/.local/share/applications, the icon to
# ~/.local/share/icons/hicolor/256x256/apps and the .onnx file type to ~/.local/share/mime.
set -euo pipefail

BUNDLE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
APPS="$DATA/applications"
ICONS="$DATA/icons/hicolor/256x256/apps"
MIME="$DATA/mime"

refresh() {
    command -v update-desktop-database >/dev/null && update-desktop-database -q "$APPS" || true
    command -v update-mime-database >/dev/null && update-mime-database "$MIME" >/dev/null 2>&1 || true
    command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t "$DATA/icons/hicolor" || true
}

if [[ "${1:-}" == "--uninstall" ]]; then
    rm -f "$APPS/accelstudio.desktop" "$ICONS/accelstudio.png" "$MIME/packages/accelstudio-mime.xml"
    refresh
    echo "AccelStudio desktop entry removed."
    exit 0
fi

for f in accelstudio accelstudio.desktop accelstudio.png accelstudio-mime.xml; do
    if [[ ! -e "$BUNDLE/$f" ]]; then
        echo "error: $BUNDLE/$f is missing; run this script from inside the unpacked AccelStudio folder" >&2
        exit 1
    fi
done

mkdir -p "$APPS" "$ICONS" "$MIME/packages"
exe="$BUNDLE/accelstudio"
case "$exe" in
    *[\"\`\$\\%]*)
        echo "error: the bundle path $BUNDLE holds one of \" \` \$ \\ %; move it to a plainer path first" >&2
        exit 1 ;;
esac
quoted="$exe"
[[ "$exe" == *[[:space:]]* ]] && quoted="\"$exe\""  # the Exec key splits on spaces unless quoted
tmp="$(mktemp "$APPS/.accelstudio.XXXXXX")"
while IFS= read -r line; do
    case "$line" in
        "Exec=accelstudio "*) line="Exec=$quoted ${line#Exec=accelstudio }" ;;
        "TryExec=accelstudio") line="TryExec=$exe" ;;
    esac
    printf '%s\n' "$line"
done < "$BUNDLE/accelstudio.desktop" > "$tmp"
chmod 644 "$tmp"
mv -f "$tmp" "$APPS/accelstudio.desktop"
install -m 644 "$BUNDLE/accelstudio.png" "$ICONS/accelstudio.png"
install -m 644 "$BUNDLE/accelstudio-mime.xml" "$MIME/packages/accelstudio-mime.xml"
refresh
echo "Installed $APPS/accelstudio.desktop (runs $exe) and the icon; AccelStudio is now in the application menu."
