#!/bin/sh
# Builds the tickstream Debian package from this checkout:
#   packaging/build-deb.sh           ->  target/debian/tickstream_VERSION-REV_amd64.deb
#   packaging/build-deb.sh --binary  ->  only the static binary (its path)
# (under $CARGO_TARGET_DIR when set). Needs cargo with the
# x86_64-unknown-linux-gnu target, dpkg-deb, gzip and awk; no cargo-deb. Its
# last line of output is the package's path. When lintian is installed it
# checks the package and fails on any error (LINTIAN=no skips that).
#
# What goes in:
#   /usr/bin/tickstream                           the fully static binary
#   /usr/lib/systemd/system/tickstream.service    packaging/tickstream.service
#   /usr/lib/sysusers.d/tickstream.conf           the system user
#   /etc/default/tickstream                       commented settings (a conffile)
#   /usr/share/man/man1/tickstream.1.gz           made from --help (packaging/man.sh)
#   /usr/share/doc/tickstream/{copyright,changelog.Debian.gz}
#   DEBIAN/{control,conffiles,md5sums,postinst,prerm,postrm}
# The postinst makes the user and /etc/tickstream (0750 root:tickstream) for
# the key file the admin writes there.
set -eu
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-gnu
target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in /*) ;; *) target_dir=$PWD/$target_dir ;; esac

RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target "$target"
binary=$target_dir/$target/release/tickstream
if [ "${1:-}" = --binary ]; then
    echo "$binary"
    exit 0
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
# The Debian version: the first entry of packaging/debian/changelog, which
# must be of this Cargo version.
deb_version=$(sed -n '1s/^tickstream (\(.*\)) .*/\1/p' packaging/debian/changelog)
case $deb_version in
"$version"-*) ;;
*)
    echo "build-deb.sh: packaging/debian/changelog is at $deb_version, Cargo.toml at $version" >&2
    exit 1
    ;;
esac
# Fixed dates and modes, so the same checkout gives the same package.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(date -d "$(sed -n 's/^ -- .*>  //p' packaging/debian/changelog | head -n 1)" +%s)}"
man_date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)

out=$target_dir/debian
root=$out/root
rm -rf "$root"
mkdir -p "$root/DEBIAN"
umask 022
install -D -m 0755 "$binary" "$root/usr/bin/tickstream"
install -D -m 0644 packaging/tickstream.service "$root/usr/lib/systemd/system/tickstream.service"
install -D -m 0644 packaging/tickstream.sysusers "$root/usr/lib/sysusers.d/tickstream.conf"
install -D -m 0644 packaging/tickstream.default "$root/etc/default/tickstream"
install -d -m 0755 "$root/usr/share/man/man1" "$root/usr/share/doc/tickstream"
packaging/man.sh "$binary" "$man_date" | gzip -9n > "$root/usr/share/man/man1/tickstream.1.gz"
install -m 0644 packaging/debian/copyright "$root/usr/share/doc/tickstream/copyright"
gzip -9n < packaging/debian/changelog > "$root/usr/share/doc/tickstream/changelog.Debian.gz"
chmod 0644 "$root/usr/share/man/man1/tickstream.1.gz" "$root/usr/share/doc/tickstream/changelog.Debian.gz"
for script in postinst prerm postrm; do
    install -m 0755 "packaging/debian/$script" "$root/DEBIAN/$script"
done
echo /etc/default/tickstream > "$root/DEBIAN/conffiles"
(cd "$root" && find usr etc -type f | LC_ALL=C sort | xargs md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
installed_size=$(du -k -s --exclude=DEBIAN "$root" | cut -f 1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: tickstream
Version: $deb_version
Architecture: amd64
Maintainer: Seed 644ca375 maintainers <maintainers@users.noreply.r-seed-644ca375.example>
Installed-Size: $installed_size
Section: net
Priority: optional
Description: live price feed over Server-Sent Events
 tickstream streams prices to browsers and other clients as Server-Sent
 Events, from a simulated feed or a Redis stream shared by replicas, with
 resume by Last-Event-ID, conflated streams and optional access tokens
 (HS256 JWTs). It is one static binary with one thread per client.
 .
 This package runs it as a sandboxed systemd service (Type=notify; a
 reload re-reads the key file) under the system user tickstream.
CONTROL
chmod 0644 "$root/DEBIAN/control"
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

deb=$out/tickstream_${deb_version}_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null

if [ "${LINTIAN:-yes}" != no ] && command -v lintian >/dev/null 2>&1; then
    # As root (CI runs as root) lintian needs --allow-root. Its two
    # warnings stay, for these reasons:
    # - W: initial-upload-closes-no-bugs: Debian wants a first upload to
    #   close its "intent to package" bug. This package is built from the
    #   repository, not uploaded to Debian; there is no such bug to name.
    # - W: shared-library-lacks-prerequisites [usr/bin/tickstream]: the
    #   binary is static-pie (crt-static on x86_64-unknown-linux-gnu): an
    #   ELF of type DYN, for address-space randomisation, that needs no
    #   library. Lintian takes any DYN object without DT_NEEDED for a
    #   library missing its libc. Statically linked is the point.
    # (At -I it also notes binary-has-unneeded-section .comment, the
    # toolchain's version strings; package-supports-alternative-init-but-no-
    # init.d-script: the sandbox is the unit's; and spelling-error-in-binary
    # "wTH", a false hit in compiled code.)
    lintian --allow-root --fail-on error "$deb" >&2
fi
echo "$deb"
