# The Debian packages, from the install rules every `cmake --install` uses:
#
#   cmake -S . -B build-deb -DDEVID_DEB=ON -DDEVID_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
#   cmake --build build-deb -j"$(nproc)" && (cd build-deb && cpack -G DEB)
#
# makes devid-verifier, devid-agent and devid-tools (deploy/install-deps.sh
# --packages installs dpkg-dev, file and lintian for it). Each install
# component goes into one package:
#
#   devid-verifier   verifier + doc: the verifier, its unit, the sysusers and
#                    tmpfiles entries, /etc/devid/verifier.conf (a conffile),
#                    the examples, the guides and the wire schema
#   devid-agent      agent: the agent, its first-boot unit, the renewal
#                    service and timer, agent.conf.example, device.md
#   devid-tools      tools: devid-factory and devid-dev-pki (lab use)
#
# Dependencies on libraries come from dpkg-shlibdeps; the ones written here
# are what no ELF file shows: debconf and the user tools for the verifier's
# maintainer scripts, the commands the two tools' scripts run. The maintainer
# scripts (deploy/debian/verifier, deploy/debian/agent) enable and start
# nothing on install; docs/operator.md, "Install from packages", says what
# to do then, and what purge keeps.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME devid)
set(CPACK_PACKAGE_VENDOR "devid")
set(CPACK_PACKAGE_CONTACT "devid maintainers <maintainers@users.noreply.r-seed-4e76fe5d.example>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_COMPONENTS_ALL verifier doc agent tools)
set(CPACK_COMPONENTS_GROUPING ONE_PER_GROUP)
set(CPACK_COMPONENT_VERIFIER_GROUP verifier)
set(CPACK_COMPONENT_DOC_GROUP verifier)
set(CPACK_COMPONENT_AGENT_GROUP agent)
set(CPACK_COMPONENT_TOOLS_GROUP tools)

set(devid_deb ${CMAKE_CURRENT_LIST_DIR})
set(devid_deb_out ${CMAKE_BINARY_DIR}/debian)

# The changelog's newest entry must be this version: dpkg and lintian read
# the version from it, and a package whose changelog is behind lies.
file(STRINGS ${devid_deb}/changelog devid_changelog_top LIMIT_COUNT 1)
if(NOT devid_changelog_top MATCHES "^devid \\(${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}\\) ")
  message(FATAL_ERROR "deploy/debian/changelog starts with '${devid_changelog_top}', not with "
                      "devid (${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}): add an entry")
endif()
find_program(GZIP gzip REQUIRED)
file(MAKE_DIRECTORY ${devid_deb_out})
add_custom_command(
  OUTPUT ${devid_deb_out}/changelog.Debian.gz
  COMMAND ${GZIP} -9nc ${devid_deb}/changelog > ${devid_deb_out}/changelog.Debian.gz
  DEPENDS ${devid_deb}/changelog
  COMMENT "gzip -9n deploy/debian/changelog")
add_custom_target(deb-changelog ALL DEPENDS ${devid_deb_out}/changelog.Debian.gz)

# Every package: its copyright file and changelog in /usr/share/doc/PACKAGE.
foreach(g verifier agent tools)
  install(FILES ${devid_deb}/copyright ${devid_deb_out}/changelog.Debian.gz
          DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/devid-${g} COMPONENT ${g})
endforeach()

set(CPACK_DEBIAN_VERIFIER_PACKAGE_NAME devid-verifier)
# adduser for the postinst where systemd-sysusers is absent (tpm-udev, which
# the TSS libraries depend on, needs it anyway).
set(CPACK_DEBIAN_VERIFIER_PACKAGE_DEPENDS "adduser, debconf (>= 0.5) | debconf-2.0")
set(CPACK_DEBIAN_VERIFIER_DESCRIPTION
    "IEEE 802.1AR device enrollment verifier (server)
devid-verifier enrolls devices at first boot using the IDevID in their TPM
2.0: over mutual TLS it checks the IDevID chain to a configured manufacturer
root, a signed challenge transcript and the TPM's evidence for a new key,
applies policy, issues an operational certificate (LDevID) and records it in
a SQLite or PostgreSQL ledger.
.
The package installs the unit devid-verifier.service, the devid system user
and /var/lib/devid, but enables and starts nothing: put the TLS, CA and token
keys and the manufacturer roots in place first (docs/operator.md).")
set(CPACK_DEBIAN_VERIFIER_PACKAGE_CONTROL_EXTRA
    ${devid_deb}/verifier/conffiles ${devid_deb}/verifier/templates
    ${devid_deb}/verifier/config ${devid_deb}/verifier/postinst
    ${devid_deb}/verifier/prerm ${devid_deb}/verifier/postrm)

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME devid-agent)
set(CPACK_DEBIAN_AGENT_DESCRIPTION
    "IEEE 802.1AR device enrollment agent (device side)
devid-agent runs on the device: at first boot it enrolls with a devid
verifier over mutual TLS with the IDevID in the TPM as client certificate,
creates a new key in the same TPM and receives an operational certificate
(LDevID) for it; a timer renews that certificate before it expires.
.
The package installs devid-agent.service (first boot) and
devid-agent-renew.timer, but enables neither: write /etc/devid/agent.conf
first (docs/device.md).")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
    ${devid_deb}/agent/postinst ${devid_deb}/agent/prerm ${devid_deb}/agent/postrm)

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME devid-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION devel)
# Shell scripts: dpkg-shlibdeps sees no ELF file in them; these are the
# commands they run (devid-factory: openssl with the tpm2 provider and
# tpm2-tools 5.4; devid-dev-pki: openssl).
set(CPACK_DEBIAN_TOOLS_PACKAGE_DEPENDS "openssl, tpm2-openssl, tpm2-tools (>= 5.4)")
set(CPACK_DEBIAN_TOOLS_DESCRIPTION
    "devid lab tools: manufacturer simulator and lab PKI
devid-factory plays a manufacturer's factory line: it keeps a root and
IDevID intermediate CA and provisions a (software) TPM with an IDevID key
and certificate. devid-dev-pki makes a devid verifier's TLS certificate,
operational CA and token key for a lab. Neither is for production keys.")

include(CPack)
