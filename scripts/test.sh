#!/usr/bin/env bash
# The README's test command (`npm run test:all`), also what CI runs (.ci/run):
# everything the tests need, then the same suite as `npm test`.
#
# 1. System packages the tests use: redis-server (fleet tests), Debian's
#    chromium (canvas and sandbox cases), python3's cryptography (the Python
#    example), script(1) (the CLI on a terminal), libnss3 and libexpat1
#    (@sparticuz/chromium's binary). As root on Debian/Ubuntu they are
#    installed with apt-get; otherwise one line names them and the run stops.
# 2. A supported Node: the machine's own when it is 22.18 or newer, else Node 24
#    from npm's `node` package in .cache/ (nothing outside the checkout).
#    TEST_NODE="24 22" runs the suite once on each of those lines (as CI does).
# 3. npm ci when node_modules is missing or older than package-lock.json,
#    then type check, lint and the suite. A skipped test fails the run: a
#    case that cannot run here is a missing install, not a pass.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

missing=()
ldconfig -p 2>/dev/null | grep -q 'libnss3.so' || missing+=(libnss3)
ldconfig -p 2>/dev/null | grep -q 'libexpat.so' || missing+=(libexpat1)
command -v python3 >/dev/null && python3 -c 'import cryptography' 2>/dev/null || missing+=(python3-cryptography)
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /usr/lib/chromium/chromium ] || missing+=(chromium)
command -v script >/dev/null || missing+=(bsdutils)
command -v runuser >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "# installing the packages the tests need: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "The tests need these system packages: ${missing[*]} (Debian/Ubuntu: sudo apt-get install ${missing[*]}); install them and run again." >&2
    exit 1
  fi
fi

# The machine's Node as its major line when it runs TypeScript as it is
# (22.18 or newer), else 0.
supported_node () {
  node -p 'const [a, b] = process.versions.node.split(".").map(Number); a > 22 || (a === 22 && b >= 18) ? a : 0' 2>/dev/null || echo 0
}

# A Node binary of the given major line: the machine's if it is that line,
# else npm's `node` package installed under .cache/node-<line>.
node_of_line () {
  local line=$1 have
  have=$(supported_node)
  if [ "$have" = "$line" ]; then dirname "$(command -v node)"; return; fi
  local dir="$root/.cache/node-$line"
  if [ ! -x "$dir/node_modules/.bin/node" ]; then
    echo "# installing Node $line from npm's node package into .cache/node-$line" >&2
    npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "node@$line" >/dev/null
  fi
  echo "$dir/node_modules/.bin"
}

lines=${TEST_NODE:-}
if [ -z "$lines" ]; then
  have=$(supported_node)
  if [ "$have" -ge 22 ]; then lines=$have; else lines=24; fi
fi

# Installed with the first line's Node (a supported one: no engine warnings).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  first_bin=$(node_of_line "${lines%% *}")
  PATH="$first_bin:$PATH" npm ci --no-audit --no-fund
  # tap for .taprc's plugin list now, not during the first run (see .taprc).
  PATH="$first_bin:$PATH" npx tap build >/dev/null
fi

status=0
first=1
total_pass=0 total_fail=0 total_skip=0
for line in $lines; do
  bin=$(node_of_line "$line")
  export PATH="$bin:$PATH"
  echo "# Node $(node --version)"
  if [ $first = 1 ]; then
    # Type check, lint and the build (test/prepare.ts then finds dist/ up to
    # date) side by side: each is mostly one core. Each one's output is shown
    # when it fails.
    checks=$(mktemp -d)
    pids=()
    for check in typecheck lint build; do
      npm run --silent "$check" >"$checks/$check" 2>&1 &
      pids+=($!)
    done
    failed=()
    i=0
    for check in typecheck lint build; do
      if ! wait "${pids[$i]}"; then failed+=("$check"); echo "# npm run $check failed:"; cat "$checks/$check"; fi
      i=$((i + 1))
    done
    rm -rf "$checks"
    if [ ${#failed[@]} -gt 0 ]; then echo "# ${failed[*]} failed; the suite was not run" >&2; exit 1; fi
    first=0
  fi
  log=$(mktemp)
  set +e
  npm test 2>&1 | tee "$log"
  run=${PIPESTATUS[0]}
  set -e
  # tap's summary, as the plain line CI reads: "N passed, N failed".
  summary=$(grep -E '^# \{ total: [0-9]+' "$log" | tail -1 || true)
  # Every failure again at the end, with its file and tap's diagnostic,
  # where a CI log cut to its last lines still shows it.
  failures=$(awk '
    /^# Subtest: / { file = substr($0, 12) }
    /^ *not ok / { print "# FAILED in " file ": " $0; if (++n <= 10) { inyaml = 1; lines = 0 }; next }
    inyaml && lines < 30 { print "#   " $0; lines++; if ($0 ~ /^ *\.\.\.$/) inyaml = 0 }
  ' "$log")
  if [ -n "$failures" ]; then echo "# ---- failures on Node $line ----"; echo "$failures"; fi
  rm -f "$log"
  pass=$(grep -oE 'pass: [0-9]+' <<<"$summary" | grep -oE '[0-9]+' || echo 0)
  fail=$(grep -oE 'fail: [0-9]+' <<<"$summary" | grep -oE '[0-9]+' || echo 0)
  skip=$(grep -oE 'skip: [0-9]+' <<<"$summary" | grep -oE '[0-9]+' || echo 0)
  todo=$(grep -oE 'todo: [0-9]+' <<<"$summary" | grep -oE '[0-9]+' || echo 0)
  echo "# Node $line: ${pass} passed, ${fail} failed, ${skip} skipped"
  total_pass=$((total_pass + pass)) total_fail=$((total_fail + fail)) total_skip=$((total_skip + skip))
  if [ "$run" != 0 ]; then status=$run; fi
  if [ -z "$summary" ]; then echo "# Node $line: no tap summary" >&2; status=1; fi
  if [ "$skip" != 0 ] || [ "$todo" != 0 ]; then
    echo "# Node $line: ${skip} skipped and ${todo} todo tests; every test must run here" >&2
    status=1
  fi
  PATH=${PATH#"$bin:"}
done
echo "tests: ${total_pass} passed, ${total_fail} failed, ${total_skip} skipped"
exit $status
