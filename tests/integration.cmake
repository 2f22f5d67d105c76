# Integration tests: real swtpm, tpm2-abrmd, factory, verifier and agent on
# loopback. Each script starts its own processes on free ports, so they run in
# parallel.
foreach(t factory enroll chains agent systemd fleet revoke service catpm renew bare_swtpm
          install tpm_commands wire logs signer scale scale_replay scale_failover nv_quirks
          crowd assurance replay tlog ek_trust ek_enroll man token_rotation)
  add_test(NAME integration.${t}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_${t}.sh)
  set_tests_properties(integration.${t} PROPERTIES
    ENVIRONMENT "DEVID_BIN=${CMAKE_BINARY_DIR};DEVID_SRC=${CMAKE_SOURCE_DIR}"
    TIMEOUT 600
    LABELS integration)
endforeach()
