#pragma once
/// @file
/// @brief Ready grammars as data (compile_grammar's GBNF syntax), shared by examples and tests.

#include <string_view>

namespace tsmc::grammars {

/// @brief JSON (RFC 8259): any JSON value (object, array, string with escapes, number, true,
/// false, null) with insignificant whitespace (space, tab, newline, carriage return) around
/// values and structural characters, the whole text one value (whitespace around it allowed).
///
/// Strings: any code point except `"`, `\` and the controls U+0000-U+001F, or an escape
/// `\" \\ \/ \b \f \n \r \t \uXXXX` (any four hex digits, unpaired surrogate escapes included, as
/// RFC 8259's grammar). Numbers: `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][-+]?[0-9]+)?`, no
/// leading `+`, no NaN or Infinity. Repetitions are written with `*` (left recursion inside), so
/// the recogniser's states do not grow with the length of a string or number; they grow with the
/// nesting depth of arrays and objects.
inline constexpr std::string_view json = R"gbnf(# RFC 8259 JSON text
root    ::= ws value ws
value   ::= object | array | string | number | "true" | "false" | "null"
object  ::= "{" ws ( member ( ws "," ws member )* ws )? "}"
member  ::= string ws ":" ws value
array   ::= "[" ws ( value ( ws "," ws value )* ws )? "]"
string  ::= "\"" char* "\""
char    ::= [^"\\\x00-\x1f] | "\\" escape
escape  ::= ["\\/bfnrt] | "u" hex hex hex hex
hex     ::= [0-9a-fA-F]
number  ::= "-"? integer fraction? exponent?
integer ::= "0" | [1-9] [0-9]*
fraction ::= "." [0-9]+
exponent ::= [eE] [-+]? [0-9]+
ws      ::= [ \t\n\r]*
)gbnf";

/// @brief Arithmetic expressions: non-negative integers, `+ - * /` with the usual precedence
/// (left-associative, written as left recursion), parentheses, and optional spaces between
/// tokens and around the expression.
inline constexpr std::string_view arithmetic = R"gbnf(# integer arithmetic
root   ::= sp expr sp
expr   ::= expr sp [-+] sp term | term
term   ::= term sp [*/] sp factor | factor
factor ::= [0-9]+ | "(" sp expr sp ")"
sp     ::= " "*
)gbnf";

}  // namespace tsmc::grammars
