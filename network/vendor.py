"""Each platform's naming rules, checked before any value reaches a device config.

A value rendered into a config is one CLI argument: it must be printable ASCII without `?` (the
CLI's help key on every platform here), without leading or trailing blanks (the device would strip
them and the diff would never settle), and within the vendor's length and character rules. Limits
are from the vendors' command references (VRP 5/8, Comware 7, IOS-XE, RGOS 11); where a manual
was not at hand the stricter of the others applies, so a value valid here is valid on all of them.
"""

from __future__ import annotations

import re

from inventory.model import Platform

CISCO_LIKE = (Platform.cisco_ios, Platform.ruijie_os)

# The VLAN (L3) interface of each platform, as the inventory writes it (no spaces).
VLAN_INTERFACE = {
    Platform.huawei_vrp: re.compile(r"^Vlanif([0-9]{1,4})$"),
    Platform.huawei_vrpv8: re.compile(r"^Vlanif([0-9]{1,4})$"),
    Platform.hp_comware: re.compile(r"^Vlan-interface([0-9]{1,4})$"),
    Platform.cisco_ios: re.compile(r"^Vlan([0-9]{1,4})$"),
    Platform.ruijie_os: re.compile(r"^VLAN([0-9]{1,4})$"),
}

# Interface types each platform knows (the name is type + numbers); anything else is refused.
_PORT = r"[0-9]{1,3}(/[0-9]{1,3}){0,3}(\.[0-9]{1,5})?"
INTERFACE_NAME = {
    Platform.huawei_vrp: re.compile(rf"^(Vlanif|GigabitEthernet|XGigabitEthernet|40GE|100GE|Ethernet|Eth-Trunk|"
                                    rf"LoopBack|MEth)({_PORT})$"),
    Platform.huawei_vrpv8: re.compile(rf"^(Vlanif|GE|10GE|25GE|40GE|100GE|Eth-Trunk|LoopBack|MEth)({_PORT})$"),
    Platform.hp_comware: re.compile(rf"^(Vlan-interface|GigabitEthernet|Ten-GigabitEthernet|FortyGigE|"
                                    rf"HundredGigE|Bridge-Aggregation|Route-Aggregation|LoopBack|M-GigabitEthernet)"
                                    rf"({_PORT})$"),
    Platform.cisco_ios: re.compile(rf"^(Vlan|GigabitEthernet|TenGigabitEthernet|FastEthernet|FortyGigabitEthernet|"
                                   rf"Port-channel|Loopback)({_PORT})$"),
    Platform.ruijie_os: re.compile(rf"^(VLAN|GigabitEthernet|TenGigabitEthernet|FastEthernet|"
                                   rf"FortyGigabitEthernet|AggregatePort|Loopback|Mgmt)({_PORT})$"),
}

# The ports that can be routed ports (a carrier link): physical and aggregated Ethernet, not a VLAN interface,
# loopback or management port (Comware: an Ethernet port, which `port link-mode route` turns; its Route-Aggregation
# is routed already and takes no link mode). network/templates/<platform>/interfaces.j2 prints each form.
ROUTED_PORT = {
    Platform.huawei_vrp: re.compile(rf"^(GigabitEthernet|XGigabitEthernet|40GE|100GE|Ethernet|Eth-Trunk)({_PORT})$"),
    Platform.huawei_vrpv8: re.compile(rf"^(GE|10GE|25GE|40GE|100GE|Eth-Trunk)({_PORT})$"),
    Platform.hp_comware: re.compile(rf"^(GigabitEthernet|Ten-GigabitEthernet|FortyGigE|HundredGigE)({_PORT})$"),
    Platform.cisco_ios: re.compile(rf"^(GigabitEthernet|TenGigabitEthernet|FastEthernet|FortyGigabitEthernet|"
                                   rf"Port-channel)({_PORT})$"),
    Platform.ruijie_os: re.compile(rf"^(GigabitEthernet|TenGigabitEthernet|FastEthernet|FortyGigabitEthernet|"
                                   rf"AggregatePort)({_PORT})$"),
}

NAME_MAX = {  # VPN instance / VRF name length
    Platform.huawei_vrp: 31, Platform.huawei_vrpv8: 31, Platform.hp_comware: 31,
    Platform.cisco_ios: 32, Platform.ruijie_os: 31,
}
DESCRIPTION_MAX = {
    Platform.huawei_vrp: 242, Platform.huawei_vrpv8: 242, Platform.hp_comware: 255,
    Platform.cisco_ios: 240, Platform.ruijie_os: 80,
}
_ARGUMENT = re.compile(r"^[\x21-\x3e\x40-\x7e]([\x20-\x3e\x40-\x7e]*[\x21-\x3e\x40-\x7e])?$")  # no '?'
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class VendorRuleError(ValueError):
    """A value the platform would refuse, or that could change what the config means."""


def argument(value: str, what: str = "value") -> str:
    """One printable-ASCII CLI argument: no control character, no '?', no leading or trailing blank."""
    if not isinstance(value, str):
        raise VendorRuleError(f"{what} must be text, got {type(value).__name__}")
    if _CONTROL.search(value):
        raise VendorRuleError(f"{what} {value!r} contains a newline or control character: it could smuggle a "
                              "command into the device config")
    if not _ARGUMENT.match(value):
        raise VendorRuleError(f"{what} {value!r} must be printable ASCII without '?' and without leading or "
                              "trailing blanks")
    return value


def vlan_of(platform: Platform, name: str) -> int | None:
    """The VLAN of a VLAN interface name (`Vlanif120` -> 120), None for any other interface."""
    m = VLAN_INTERFACE[platform].match(name)
    return int(m.group(1)) if m else None


def interface_name(platform: Platform, name: str) -> str:
    argument(name, "interface name")
    if not INTERFACE_NAME[platform].match(name):
        raise VendorRuleError(f"interface name {name!r} is not a {platform} interface "
                              f"(e.g. {VLAN_INTERFACE[platform].pattern.strip('^$').replace('([0-9]{1,4})', '100')})")
    vlan = vlan_of(platform, name)
    if vlan is not None and not 1 <= vlan <= 4094:
        raise VendorRuleError(f"interface name {name!r}: VLAN {vlan} is outside 1-4094")
    return name


def routed_port(platform: Platform, name: str) -> str:
    """A port that can carry a carrier link as a routed (L3) port on this platform (`GE1/0/1`, not `Vlanif100`)."""
    interface_name(platform, name)
    if not ROUTED_PORT[platform].match(name):
        raise VendorRuleError(f"interface {name!r} cannot be a routed port on {platform}: name a physical or "
                              "aggregated Ethernet port (not a VLAN interface, loopback or management port)")
    return name


def printed_interface(platform: Platform, name: str) -> str:
    """The name as the device prints it: RGOS puts a space between type and number (`VLAN 140`)."""
    interface_name(platform, name)
    if platform is Platform.ruijie_os:
        m = re.match(r"^([A-Za-z-]+)([0-9].*)$", name)
        return f"{m.group(1)} {m.group(2)}" if m else name
    return name


def vpn_name(platform: Platform, name: str) -> str:
    argument(name, "VPN instance name")
    if not re.match(r"^[A-Za-z][A-Za-z0-9_.-]*$", name):
        raise VendorRuleError(f"VPN instance name {name!r} must start with a letter and hold only letters, digits, "
                              "'_', '.', '-'")
    if len(name) > NAME_MAX[platform]:
        raise VendorRuleError(f"VPN instance name {name!r} is longer than {NAME_MAX[platform]} characters "
                              f"({platform})")
    if name.lower() in ("_public_", "default", "global", "mgmt-intf", "mgmt"):
        raise VendorRuleError(f"VPN instance name {name!r} is reserved")
    return name


def route_distinguisher(rd: str) -> str:
    """ASN:nn (2-byte ASN with a 4-byte number, or 4-byte ASN with a 2-byte number) or IPv4:nn."""
    argument(rd, "route distinguisher")
    left, sep, right = rd.partition(":")
    if not sep or not right.isdigit():
        raise VendorRuleError(f"route distinguisher {rd!r} must be ASN:nn or IPv4:nn")
    number = int(right)
    if left.isdigit():
        asn = int(left)
        ok = (asn <= 65535 and number <= 4294967295) or (asn <= 4294967295 and number <= 65535)
    else:
        parts = left.split(".")
        ok = len(parts) == 4 and all(p.isdigit() and int(p) <= 255 for p in parts) and number <= 65535
    if not ok:
        raise VendorRuleError(f"route distinguisher {rd!r} is out of range (ASN <= 65535 with nn <= 4294967295, "
                              "or a 4-byte ASN or an IPv4 address with nn <= 65535)")
    return rd


def description(platform: Platform, text: str) -> str:
    argument(text, "description")
    if len(text) > DESCRIPTION_MAX[platform]:
        raise VendorRuleError(f"description {text!r} is longer than {DESCRIPTION_MAX[platform]} characters "
                              f"({platform})")
    return text


def acl_number(platform: Platform, number: int, kind: str) -> int:
    """Huawei and H3C number their ACLs: basic 2000-2999, advanced 3000-3999 (IPv4 and IPv6 alike)."""
    low = {"basic": 2000, "advanced": 3000}[kind]
    if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= low + 999:
        raise VendorRuleError(f"{kind} ACL number {number!r} must be {low}-{low + 999} on {platform}")
    return number


def acl_name(platform: Platform, name: str) -> str:
    """IOS and RGOS name their ACLs: a letter first (an all-digit name would be a numbered ACL), at most 64."""
    argument(name, "ACL name")
    if not re.match(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$", name):
        raise VendorRuleError(f"ACL name {name!r} must start with a letter, hold only letters, digits, '_', '.', '-' "
                              f"and be at most 64 characters ({platform})")
    return name


def simple_name(name: str, what: str, longest: int = 32) -> str:
    """SNMP group names and the like: letters, digits, '_', '-'."""
    argument(name, what)
    if not re.match(rf"^[A-Za-z0-9][A-Za-z0-9_-]{{0,{longest - 1}}}$", name):
        raise VendorRuleError(f"{what} {name!r} must hold only letters, digits, '_', '-' (at most {longest})")
    return name
