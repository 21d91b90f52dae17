# shellcheck shell=sh
# Reading an HVM domain's memory through its own page tables, for post-mortems of pvfs
# (sourced by /init and by /xe2e/lib.sh as /xe2e/walk.sh). Needs the Xen tools on PATH.

# table_base idtr|gdtr CTX: the base of that descriptor table in a xen-hvmctx output, whose
# line reads "idtr (0x... + 0x...)" with or without blanks after the parenthesis.
table_base() {
  awk -v r="$1" '$1 == r { for (i = 2; i <= NF; i++) { f = $i; gsub(/[(]/, "", f); if (f ~ /^0x/) { print f; exit } } }' "$2"
}
# mem_word D ADDR: the 8-byte word at virtual address ADDR of HVM domain D, read through the
# domain's own page tables from its saved CR3 (xenctx walks them in software), in hex without
# 0x; empty if the walk or the mapping failed.
mem_word() {
  set -- "$1" "$(printf '%#x' "$2")"
  xenctx -m "$2" -l 1 -b 8 "$1" 2>/dev/null |
    awk 'NR == 2 && $1 ~ /^[0-9a-f]+$/ { print $1 }'
}
# idt_walk D [CTX]: for a domain that triple-faulted, what its memory says about delivering an
# interrupt: the page-table entries that map its IDT, walked from the saved CR3 one level at a
# time as the CPU does, and the IDT gates of the double fault (8) and of pvfs's upcall (0xf3),
# read through those tables. If the entries are present and the gates hold handler addresses,
# the tables in memory were intact when the CPU's own walk failed. CTX is the domain's
# xen-hvmctx output (default /run/xe2e/hvmctx-D, which triple_watch in /init saves).
idt_walk() {
  _ctx=${2:-/run/xe2e/hvmctx-$1}
  _idt=$(table_base idtr "$_ctx")
  _cr3=$(awk '$1 == "cr3" { print $2 }' "$_ctx")
  [ -n "$_idt" ] && [ -n "$_cr3" ] || return 0
  _out="walk of idt $_idt from cr3 $_cr3:"
  _t=$(( _cr3 & 0xffffffffff000 ))
  for _lvl in 4:39 3:30 2:21 1:12; do
    _at=$(( _t + ((_idt >> ${_lvl#*:}) & 511) * 8 ))
    _e=$(mem_word "$1" "$_at")
    [ -n "$_e" ] || { _out="$_out L${_lvl%%:*}@$(printf '%#x' $_at)=unreadable"; break; }
    _out="$_out L${_lvl%%:*}@$(printf '%#x' $_at)=0x$_e"
    [ $(( 0x$_e & 1 )) = 1 ] || { _out="$_out (not present)"; break; }
    # a 2 MiB or 1 GiB page ends the walk
    [ "${_lvl%%:*}" != 4 ] && [ "${_lvl%%:*}" != 1 ] && [ $(( 0x$_e & 0x80 )) != 0 ] && break
    _t=$(( 0x$_e & 0xffffffffff000 ))
  done
  for _v in 8 243; do
    _lo=$(mem_word "$1" $(( _idt + _v * 16 )))
    _hi=$(mem_word "$1" $(( _idt + _v * 16 + 8 )))
    _out="$_out; gate $_v=${_lo:-unreadable}:${_hi:-unreadable}"
  done
  echo "$_out"
}
# walk_intact WALK: an idt_walk line that found every level present and the gates 8 and 243
# as pvfs's boot writes them: present 64-bit interrupt gates of privilege 0 (type byte 8e)
# in code segment 8.
walk_intact() {
  case "$1" in *"not present"* | *unreadable* | "") return 1 ;; esac
  case "$1" in *"gate 8="????8e??0008????:*"; gate 243="????8e??0008????:*) return 0 ;; esac
  return 1
}
# idt_read_failed CTX: a xen-hvmctx output whose pending event is a page fault (a valid
# hardware exception, vector 14) at an address inside the IDT: the CPU could not read a gate.
idt_read_failed() {
  _idt=$(table_base idtr "$1")
  _cr2=$(awk '{ for (i = 1; i < NF; i++) if ($i == "cr2") { print $(i + 1); exit } }' "$1")
  _ev=$(awk '$1 == "event" { print $2; exit }' "$1")
  [ -n "$_idt" ] && [ -n "$_cr2" ] && [ -n "$_ev" ] || return 1
  [ $(( _ev & 0x800007ff )) = $(( 0x8000030e )) ] || return 1
  [ $(( _cr2 >= _idt && _cr2 < _idt + 4096 )) = 1 ]
}
# vmcb_dump D: the VMCB of domain D's vCPU 0 as Xen prints it for debug key 'v' ("dump AMD-V
# VMCBs"), the last dump in Xen's console ring; asks Xen for a fresh one first.
vmcb_dump() {
  xl debug-keys v >/dev/null 2>&1 || return 0
  sleep 1
  xl dmesg 2>/dev/null | tr -d '\r' | awk -v d="$1" '
    />>> Domain [0-9]+ <<</ { on = ($0 ~ (">>> Domain " d " <<<")); if (on) { buf = ""; n = 0 }; next }
    /\*\*\*\*\*\*\*\*\*\*/ { on = 0; next }
    on && /VCPU [1-9]/ { on = 0; next }
    on { sub(/^\(XEN\) */, ""); buf = buf $0 "\n"; n++ }
    END { printf "%s", buf }'
}
# vmcb_summary DUMP: the fields of a vmcb_dump that tell who wrote the VMCB last, on one line:
# "vintr 0x… (V_INTR_MASKING set|clear) exitcode 0x… exit_int_info 0x… cpl N cr2 0x…". Xen sets
# V_INTR_MASKING (bit 24 of vintr) when it builds a VMCB and keeps it set; only the CPU's
# #VMEXIT writes the field besides, copying the running state's, which after a #VMEXIT has
# already restored the host is 0. Empty if the dump has no vintr.
vmcb_summary() {
  set -- $(printf '%s\n' "$1" | awk '
    { for (i = 1; i < NF; i++) {
        if ($i == "vintr" && $(i + 1) == "=") v = $(i + 2)
        if ($i == "exitcode" && $(i + 1) == "=") e = $(i + 2)
        if ($i == "exit_int_info" && $(i + 1) == "=") x = $(i + 2)
        if ($i == "cpl" && $(i + 1) == "=") c = $(i + 2)
        if ($i == "CR2" && $(i + 1) == "=") r = $(i + 2) } }
    END { if (v != "") print v, e, x, c, r }')
  # (Xen prints %#lx: "0" for zero, "0x…" otherwise)
  case "${1:-}" in 0x* | 0) ;; *) return 0 ;; esac
  _m=clear; [ $(( ($1 >> 24) & 1 )) = 1 ] && _m=set
  echo "vintr $1 (V_INTR_MASKING $_m) exitcode ${2:-?} exit_int_info ${3:-?} cpl ${4:-?} cr2 ${5:-?}"
}
# idt_delivery_failed CTX VMCB: the VMCB (a vmcb_summary line) says the domain shut down
# (exit code 0x7f, a triple fault) while the CPU was delivering an event (exit_int_info
# valid), and the CPU's own last page-fault address (the VMCB's CR2) is inside the IDT that
# the saved context CTX names: delivering the event, the CPU could not read a gate. (Seen
# with the upcall, vector 0xf3, in delivery and CR2 at gate 8: the event's gate could not be
# read, then the double fault's.) The saved context's own cr2 is not the CPU's here.
idt_delivery_failed() {
  _idt=$(table_base idtr "$1")
  set -- $(printf '%s\n' "$2" | awk '{ for (i = 1; i < NF; i++) {
      if ($i == "exitcode") e = $(i + 1); if ($i == "exit_int_info") x = $(i + 1); if ($i == "cr2") r = $(i + 1) } }
    END { print e, x, r }')
  [ -n "$_idt" ] && [ "${1:-}" = 0x7f ] && [ -n "${3:-}" ] || return 1
  case "$2$3" in *[!0-9a-fx]*) return 1 ;; esac
  [ $(( ${2:-0} & 0x80000000 )) != 0 ] || return 1
  [ $(( $3 >= _idt && $3 < _idt + 4096 )) = 1 ]
}
