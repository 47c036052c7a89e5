#!/usr/bin/env bash
# Build the console's single-page app into build/console (git-ignored), from npm packages only
# (Preact, Chart.js, bundled by esbuild): nothing is fetched at run time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WEB=services/console/web
OUT=build/console
rm -rf "$OUT"
mkdir -p "$OUT/assets"
node_modules/.bin/esbuild "$WEB/main.jsx" "$WEB/main.css" --bundle --minify --format=esm --jsx=automatic \
  --jsx-import-source=preact --outdir="$OUT/assets" --log-level=warning
cp "$WEB/index.html" "$OUT/index.html"
echo "build_console: $(du -sh "$OUT" | cut -f1) -> $OUT"
