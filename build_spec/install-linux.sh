#!/usr/bin/env bash
# Install a built bundle on Linux: for this user (default PREFIX=~/.local) or system-wide
# (sudo PREFIX=/usr/local). Bundle -> $PREFIX/lib/expirytrack, the two commands -> $PREFIX/bin,
# the .desktop file and icon (taken from the bundle) -> $PREFIX/share, so the app appears in
# the desktop's application menu. `--uninstall` removes exactly these files.
# Usage: build_spec/install-linux.sh [--uninstall] [BUNDLE_DIR (default build/dist/expirytrack)]
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-$HOME/.local}
dest="$PREFIX/lib/expirytrack"
app="$PREFIX/share/applications/expirytrack-desktop.desktop"
icon="$PREFIX/share/icons/hicolor/scalable/apps/expirytrack.svg"

refresh() {
  if command -v update-desktop-database >/dev/null; then
    update-desktop-database -q "$PREFIX/share/applications" || true
  fi
  if command -v gtk-update-icon-cache >/dev/null; then
    gtk-update-icon-cache -q -t "$PREFIX/share/icons/hicolor" || true
  fi
}

if [ "${1:-}" = "--uninstall" ]; then
  rm -rf "$dest"
  rm -f "$PREFIX/bin/expirytrack" "$PREFIX/bin/expirytrack-desktop" "$app" "$icon"
  refresh
  echo "removed ExpiryTrack from $PREFIX (your data and settings are kept)"
  exit 0
fi

src=${1:-build/dist/expirytrack}
[ -x "$src/expirytrack-desktop" ] || { echo "no bundle in $src: run build_spec/build.sh" >&2; exit 1; }
res="$src/_internal/resources"
mkdir -p "$PREFIX/lib" "$PREFIX/bin"
rm -rf "$dest.new"
cp -a "$src" "$dest.new"
rm -rf "$dest"
mv "$dest.new" "$dest"
ln -sfn "$dest/expirytrack" "$PREFIX/bin/expirytrack"
ln -sfn "$dest/expirytrack-desktop" "$PREFIX/bin/expirytrack-desktop"
install -Dm644 "$res/expirytrack.svg" "$icon"
mkdir -p "$(dirname "$app")"
# Absolute Exec/TryExec: $PREFIX/bin is not always on the desktop session's PATH.
sed -e "s|^Exec=expirytrack-desktop|Exec=$PREFIX/bin/expirytrack-desktop|" \
    -e "s|^TryExec=expirytrack-desktop|TryExec=$PREFIX/bin/expirytrack-desktop|" \
    "$res/expirytrack-desktop.desktop" > "$app"
chmod 644 "$app"
refresh
echo "installed: $PREFIX/bin/expirytrack, $PREFIX/bin/expirytrack-desktop, $app"
