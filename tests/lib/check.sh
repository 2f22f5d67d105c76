# shellcheck shell=bash
# tests/lib/check.sh: counting checks, for every integration script. Needs a
# log function (tests/lib/swtpm.sh has one).
#
#   check DESCRIPTION CMD...   run CMD, count a pass or a failure
#   skip DESCRIPTION           count a check that cannot run here
#   finish                     print "N passed, M failed, K skipped"

PASSED=0
FAILED=0
SKIPPED=0

# check DESCRIPTION CMD...: run CMD, count it as passed or failed; returns 0
# when it passed, 1 when it failed.
check() {
    local what=$1
    shift
    if "$@"; then
        PASSED=$((PASSED + 1))
        log "ok: $what"
        return 0
    fi
    FAILED=$((FAILED + 1))
    log "FAIL: $what"
    return 1
}

# skip DESCRIPTION: count a check that genuinely cannot run here (say why in
# DESCRIPTION). A missing tool that deploy/install-deps.sh installs is a
# failure, not a skip.
skip() {
    SKIPPED=$((SKIPPED + 1))
    log "SKIP: $*"
}

# finish: print the closing count line, "N passed, M failed, K skipped", and
# exit with the verdict: failure when a check failed or none passed.
finish() {
    echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
    if [[ $PASSED -eq 0 ]]; then
        log "FAIL: no check passed"
        return 1
    fi
    [[ $FAILED -eq 0 ]]
}
