# The admin port's dashboard (docs/operations.md, "The dashboard"): the page's own
# files under src/dashboard/ and Chart.js from Debian's libjs-chart.js are
# turned into a C source at build time (cmake/embed.cmake) and linked into
# darner_core, so the binary serves every byte of the page itself.
# Included from CMakeLists.txt after darner_core is defined.

# Chart.js as a plain script (UMD build): chart.min.js in Debian's 3.x
# package, chart.umd.js in 4.x.
find_file(DARNER_CHARTJS NAMES chart.umd.js chart.min.js
          PATHS /usr/share/javascript/chart.js /usr/share/nodejs/chart.js/dist
          NO_DEFAULT_PATH NO_CMAKE_FIND_ROOT_PATH) # a host file, also when cross-compiling
if(NOT DARNER_CHARTJS)
  message(FATAL_ERROR "Chart.js not found under /usr/share/javascript/chart.js: "
                      "install Debian's libjs-chart.js (scripts/install-deps does)")
endif()

set(_dash_src ${CMAKE_SOURCE_DIR}/src/dashboard)
set(_dash_out ${CMAKE_BINARY_DIR}/generated/dashboard_files.c)
# name|path pairs: the name is the path the admin port serves it under
set(_dash_files index.html|${_dash_src}/index.html
                dashboard.js|${_dash_src}/dashboard.js
                dashboard.css|${_dash_src}/dashboard.css
                chart.js|${DARNER_CHARTJS})
string(REPLACE ";" "|" _dash_arg "${_dash_files}")
add_custom_command(OUTPUT ${_dash_out}
                   COMMAND ${CMAKE_COMMAND} -DOUTPUT=${_dash_out} -DFILES=${_dash_arg}
                           -P ${CMAKE_SOURCE_DIR}/cmake/embed.cmake
                   DEPENDS ${CMAKE_SOURCE_DIR}/cmake/embed.cmake ${_dash_src}/index.html
                           ${_dash_src}/dashboard.js ${_dash_src}/dashboard.css ${DARNER_CHARTJS}
                   COMMENT "Embedding the dashboard and Chart.js (${DARNER_CHARTJS})"
                   VERBATIM)
target_sources(darner_core PRIVATE ${_dash_out})
