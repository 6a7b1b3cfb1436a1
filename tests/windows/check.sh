#!/usr/bin/env bash
# Runs the Windows build of the partner tools under Wine: `icsflow
# pseudonymise` against the published test vectors, and `icsflow publish
# --dry-run` over every example line. Run by `make windows`.
set -euo pipefail
cd "$(dirname "$0")/../.."
exe=target/x86_64-pc-windows-gnu/release/icsflow.exe
export WINEDEBUG=-all WINEPREFIX="$PWD/target/wine"
wine=/usr/lib/wine/wine64
mkdir -p "$WINEPREFIX"
"$wine" cmd /c exit >/dev/null 2>&1 || true
x86_64-w64-mingw32-gcc -shared -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
    tests/windows/process_prng.c -lbcrypt
windows_path() { echo "Z:$(realpath "$1" | tr / '\\')"; }

"$wine" "$exe" --version
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
python3 - "$scratch" <<'PYTHON'
import json, sys
vectors = json.load(open("schemas/pseudonym-test-vectors.json"))["vectors"]
key = vectors[0]["key"]
chosen = [vector for vector in vectors if vector["key"] == key]
open(f"{sys.argv[1]}/key", "w").write(key)
open(f"{sys.argv[1]}/numbers", "w").write("".join(v["nhs_number"] + "\r\n" for v in chosen))
open(f"{sys.argv[1]}/expected", "w").write("".join(v["pseudonym"] + "\n" for v in chosen))
PYTHON
"$wine" "$exe" pseudonymise --key-file "$(windows_path "$scratch/key")" \
    "$(windows_path "$scratch/numbers")" | tr -d '\r' > "$scratch/got"
diff "$scratch/expected" "$scratch/got"
echo "windows: pseudonymise agrees with the test vectors"
for feed in discharge social_care primary_care; do
    "$wine" "$exe" publish --feed "$feed" --dry-run "$(windows_path "schemas/examples/$feed.jsonl")"
done
echo "windows: publish --dry-run accepts every example"
