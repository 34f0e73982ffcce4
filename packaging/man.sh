#!/bin/sh
# Writes tickstream(1), in roff, to stdout, from `BINARY --help` (which is
# man-page sized): the usage lines become SYNOPSIS, the flag table OPTIONS,
# the paragraphs after it DESCRIPTION; FILES, SIGNALS and EXIT STATUS are
# about the package and written here.
#   packaging/man.sh target/.../tickstream [DATE] > tickstream.1
set -eu
binary=$1
date=${2:-$(date -u +%Y-%m-%d)}
version=$("$binary" --version | awk '{ print $2 }')

"$binary" --help | awk -v version="$version" -v date="$date" '
# roff escapes: backslash, hyphen as minus, a leading dot or quote.
function esc(s) {
    gsub(/\\/, "\\e", s)
    gsub(/-/, "\\-", s)
    sub(/^[.\047]/, "\\\\\\&&", s)
    return s
}
NR == 1 {
    split($0, title, ": ")
    printf ".TH TICKSTREAM 1 \"%s\" \"tickstream %s\" \"User Commands\"\n", date, version
    print ".SH NAME"
    print "tickstream \\- " esc(title[2])
    next
}
/^USAGE: / { sub(/^USAGE: /, ""); section = "usage"; print ".SH SYNOPSIS" }
section == "usage" && /^ *$/ { section = "between"; next }
section == "usage" {
    sub(/^ +/, "")
    split($0, parts, /  +/)
    print ".TP"
    print ".B " esc(parts[1])
    print esc(parts[2])
    next
}
/^  --/ {
    if (section != "options") { print ".SH OPTIONS"; section = "options" }
    line = $0
    sub(/^ +/, "", line)
    n = split(line, parts, /  +/)
    print ".TP"
    print ".B " esc(parts[1])
    if (n > 1) print esc(parts[2])
    next
}
section == "options" && /^ *$/ { section = "text"; print ".SH DESCRIPTION"; next }
section == "text" && /^ *$/ { print ".PP"; next }
section == "text" { print esc($0) }
END {
    print ".SH FILES"
    print ".TP"
    print ".I /etc/default/tickstream"
    print "The service\047s settings, as TICKSTREAM_* variables."
    print ".TP"
    print ".I /etc/tickstream/keys"
    print "The key file for \\-\\-auth\\-keys: one secret a line, mode 0640, owner root, group tickstream."
    print ".TP"
    print ".I /usr/lib/systemd/system/tickstream.service"
    print "The systemd unit: \\fBsystemctl reload tickstream\\fR re\\-reads the key file."
    print ".SH SIGNALS"
    print "SIGHUP re\\-reads \\-\\-auth\\-keys. SIGTERM and SIGINT stop listening, end the open"
    print "streams over \\-\\-drain, and exit 0; a second one exits 1 at once."
    print ".SH EXIT STATUS"
    print ".TP"
    print ".B 0"
    print "stopped by SIGTERM or SIGINT, the drain done"
    print ".TP"
    print ".B 1"
    print "a second stop signal, or it could not start (say, the address is taken)"
    print ".TP"
    print ".B 2"
    print "a bad flag or key file"
    print ".SH SEE ALSO"
    print "\\fBsystemctl\\fR(1), \\fBsystemd.exec\\fR(5), \\fBsysusers.d\\fR(5)"
}
'
