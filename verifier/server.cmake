# The verifier's shells and executable (included from verifier/CMakeLists.txt).
# PkgConfig::SQLITE and PkgConfig::INIH come from the top-level CMakeLists.txt.

# The issuance ledger (interface + SQLite backend) and the pure CRL builder,
# apart so the unit tests link them without the server.
add_library(devid_verifier_ledger STATIC ledger.c ledger_sqlite.c crl.c)
target_link_libraries(devid_verifier_ledger PUBLIC devid_common_io PkgConfig::SQLITE
                      PkgConfig::OPENSSL)

add_executable(devid-verifier main.c cmd_serve.c cmd_check.c cmd_ledger.c server.c ca.c revocation.c
                              config.c metrics.c)
target_link_libraries(devid-verifier PRIVATE devid_verifier_trust devid_verifier_ledger
                      PkgConfig::LIBEVENT PkgConfig::OPENSSL PkgConfig::INIH)
install(TARGETS devid-verifier RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT verifier)
