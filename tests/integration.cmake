# Integration tests: real swtpm, tpm2-abrmd, factory, verifier and agent on
# loopback. Each script starts its own processes on free ports, so they run in
# parallel.
foreach(t factory enroll chains agent systemd fleet revoke service catpm renew bare_swtpm
          install tpm_commands wire logs signer scale scale_replay scale_failover nv_quirks
          crowd assurance replay tlog ek_trust ek_enroll man token_rotation boot_gate
          ak_bare_swtpm)
  add_test(NAME integration.${t}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_${t}.sh)
  set_tests_properties(integration.${t} PROPERTIES
    ENVIRONMENT "DEVID_BIN=${CMAKE_BINARY_DIR};DEVID_SRC=${CMAKE_SOURCE_DIR}"
    TIMEOUT 600
    LABELS integration)
endforeach()

# The Debian packages (tests/packaging/test_deb.sh): builds them in its own
# build directory, runs lintian, and installs, uses and purges them in a fresh
# Debian 12 root. Skipped (exit 77) without root or without the fresh root's
# tarball, and says why. Not in the sanitizer build: the packages are built
# the same whatever the suite's build is, so once is enough.
if(NOT DEVID_SANITIZE)
  add_test(NAME packaging.deb COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/packaging/test_deb.sh)
  set_tests_properties(packaging.deb PROPERTIES
    ENVIRONMENT "DEVID_SRC=${CMAKE_SOURCE_DIR};DEVID_DEB_BUILD=${CMAKE_BINARY_DIR}/deb"
    SKIP_RETURN_CODE 77
    TIMEOUT 1800
    LABELS "integration;packaging")
endif()
