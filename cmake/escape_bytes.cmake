# Defines escape_file_bytes(PATH OUT_VAR): sets OUT_VAR to the file's bytes as
# C++ string literal lines, each byte a \xNN escape and 24 bytes a line. A hex
# escape cannot swallow the next character because that character is always
# a '\'. The embedding scripts include this file.

function(escape_file_bytes path out_var)
    file(READ "${path}" hex HEX)
    string(LENGTH "${hex}" hex_length)
    set(escaped "")
    set(offset 0)
    while(offset LESS hex_length)
        string(SUBSTRING "${hex}" ${offset} 48 chunk)
        string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" chunk "${chunk}")
        string(APPEND escaped "    \"${chunk}\"\n")
        math(EXPR offset "${offset} + 48")
    endwhile()
    set(${out_var} "${escaped}" PARENT_SCOPE)
endfunction()
