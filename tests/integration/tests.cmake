# Integration tests: every tests/integration/*.test.mjs is one ctest test,
# integration/<name>, run by Node's built-in test runner. They start the real
# binaries (paths passed through the environment) on free loopback ports.
# Included from tests/CMakeLists.txt after gateway/ and loadtest/, so the
# if(TARGET ...) checks below see those targets. See README.md here.

find_program(SY_NODE node)
if(NOT SY_NODE)
  message(STATUS "integration tests: node not found, not registered "
                 "(run scripts/install-deps.sh)")
  return()
endif()

if(NOT EXISTS ${CMAKE_SOURCE_DIR}/node_modules/openai)
  # Still registered: the tests that use the SDK fail with a clear import
  # error, which is better than silently not running them.
  message(WARNING "integration tests: node_modules/openai missing; "
                  "run scripts/install-deps.sh (npm ci)")
endif()

set(SY_IT_ENV "SY_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
              "NODE_PATH=${CMAKE_SOURCE_DIR}/node_modules")
set(SY_IT_HAVE_GATEWAY OFF)
set(SY_IT_HAVE_MOCK OFF)
if(TARGET switchyard)
  set(SY_IT_HAVE_GATEWAY ON)
  list(APPEND SY_IT_ENV "SWITCHYARD_BIN=$<TARGET_FILE:switchyard>")
endif()
if(TARGET switchyard-mock)
  set(SY_IT_HAVE_MOCK ON)
  list(APPEND SY_IT_ENV "MOCK_BIN=$<TARGET_FILE:switchyard-mock>")
endif()
if(TARGET switchyard-load)
  list(APPEND SY_IT_ENV "LOAD_BIN=$<TARGET_FILE:switchyard-load>")
endif()
if(TARGET switchyardctl)
  list(APPEND SY_IT_ENV "SWITCHYARDCTL_BIN=$<TARGET_FILE:switchyardctl>")
endif()
if(SY_SANITIZE)
  # Lets the harness know the binaries are instrumented (longer start-up and
  # drain allowances); the sanitizer-output check runs in every build.
  list(APPEND SY_IT_ENV "SY_SANITIZE=1")
endif()

file(GLOB SY_IT_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.test.mjs)
foreach(src ${SY_IT_TESTS})
  get_filename_component(fname ${src} NAME)
  string(REGEX REPLACE "\\.test\\.mjs$" "" name ${fname})
  # mock*.test.mjs needs only the mock; everything else needs both binaries.
  if(name MATCHES "^mock")
    set(ok ${SY_IT_HAVE_MOCK})
  elseif(name STREQUAL "load")
    if(SY_IT_HAVE_MOCK AND TARGET switchyard-load)
      set(ok ON)
    else()
      set(ok OFF)
    endif()
  else()
    if(SY_IT_HAVE_GATEWAY AND SY_IT_HAVE_MOCK)
      set(ok ON)
    else()
      set(ok OFF)
    endif()
  endif()
  if(NOT ok)
    message(STATUS "integration test ${name}: skipped (switchyard or "
                   "switchyard-mock target not defined yet)")
    continue()
  endif()
  add_test(NAME integration/${name}
           COMMAND ${SY_NODE} --test --test-reporter=spec ${src}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(integration/${name} PROPERTIES
    TIMEOUT 300
    ENVIRONMENT "${SY_IT_ENV}"
    LABELS integration)
  # Plain-HTTP upstreams use the lean client by default; the files that
  # exercise the upstream side run a second time against libcurl.
  if(name MATCHES "^(gateway|gateway_upstream|gateway_backpressure|router_fallback)$")
    add_test(NAME integration/${name}@curl
             COMMAND ${SY_NODE} --test --test-reporter=spec ${src}
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(integration/${name}@curl PROPERTIES
      TIMEOUT 300
      ENVIRONMENT "${SY_IT_ENV};SWITCHYARD_UPSTREAM_CLIENT=curl"
      LABELS integration)
  endif()
endforeach()
