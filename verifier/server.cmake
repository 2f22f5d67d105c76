# The verifier's shells and executable (included from verifier/CMakeLists.txt).
add_executable(devid-verifier main.c cmd_serve.c cmd_check.c server.c ca.c trust.c)
target_link_libraries(devid-verifier PRIVATE devid_verifier_core PkgConfig::LIBEVENT
                      PkgConfig::OPENSSL)
install(TARGETS devid-verifier DESTINATION bin)
