"""The inventory schema: what a city declares about its departments, systems, hosts and network.

Every string that may later reach a shell command, a device config or a spreadsheet is validated
here first (no control characters), so later stages can trust the model. Cross-record rules
(unknown references, duplicates, a classified system in the extranet) live in `validate.py`,
because they need the whole inventory.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)


def _single_line(value: str) -> str:
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise ValueError("must be one line without control characters (newline, tab, escape)")
    return value


def _multi_line(value: str) -> str:
    if re.search(r"[\x00-\x09\x0b-\x1f\x7f]", value):
        raise ValueError("must not contain control characters other than newline")
    return value


def _absolute_path(value: str) -> str:
    _single_line(value)
    path = PurePosixPath(value)
    if not path.is_absolute() or ".." in path.parts:
        raise ValueError(f"must be an absolute path without '..': {value!r}")
    return value


Text = Annotated[str, Field(min_length=1), AfterValidator(_single_line)]
LongText = Annotated[str, Field(min_length=1), AfterValidator(_multi_line)]
AbsPath = Annotated[str, AfterValidator(_absolute_path)]
# Identifiers become hostnames, Ansible group names and file names: keep them to DNS-label shape.
Ident = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
Port = Annotated[int, Field(ge=1, le=65535)]


def _unscoped(value: Any) -> Any:
    """Python reads `fe80::1%eth0` as an address; a zone id names an interface of one machine, so the same address
    with two zone ids would pass as two addresses. An inventory's addresses are the network's: refuse them."""
    address = value.network_address if isinstance(value, ipaddress.IPv6Network) else value
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise ValueError(f"{value}: an IPv6 zone id (%{address.scope_id}) names one machine's interface, not an "
                         "address: write the address without it")
    return value


def _ip_address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return _unscoped(value)
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        raise ValueError(f"not a valid IPv4 or IPv6 address: {value!r}") from None
    return _unscoped(address)


def _ip_network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return _unscoped(value)
    try:
        network = ipaddress.ip_network(str(value))
    except ValueError as exc:
        raise ValueError(f"not a valid network prefix: {value!r} ({exc})") from None
    return _unscoped(network)


# One readable message for a bad address, not one per branch of an IPv4 | IPv6 union.
IPAddress = Annotated[ipaddress.IPv4Address | ipaddress.IPv6Address, PlainValidator(_ip_address)]
IPNetwork = Annotated[ipaddress.IPv4Network | ipaddress.IPv6Network, PlainValidator(_ip_network)]
IPv6Address = Annotated[ipaddress.IPv6Address, AfterValidator(_unscoped)]
IPv6Network = Annotated[ipaddress.IPv6Network, AfterValidator(_unscoped)]


class DeptLevel(StrEnum):
    city = "city"
    county = "county"  # 区/县/旗
    town = "town"  # 镇/街道
    village = "village"  # 村/居 (村民委员会、居民委员会): the last level the extranet reaches


class Category(StrEnum):
    """Business category. Which cloud zones each may use is routing data (migrations/planning.yaml `routing`):
    after Hezhou, the first five go to the intranet, the last two to the extranet."""

    internal_office = "internal_office"
    coordination = "coordination"
    management = "management"
    supervision = "supervision"
    decision = "decision"
    social_management = "social_management"
    public_service = "public_service"


class Frequency(StrEnum):
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"
    quarterly = "quarterly"
    yearly = "yearly"
    rarely = "rarely"


class Classification(StrEnum):
    classified = "classified"  # 涉密
    non_classified = "non_classified"  # 非涉密


class Zone(StrEnum):
    intranet = "intranet"  # 电子政务内网
    extranet = "extranet"  # 电子政务外网
    private = "private"  # 业务专网
    internet = "internet"  # 互联网


class CloudZone(StrEnum):
    """A network zone of the government cloud: which network a pool host serves. A business private network
    (业务专网) is no cloud zone: a qualifying one joins the extranet, a national one stays where it is."""

    intranet = "intranet"  # 电子政务内网平台 (physically apart from the extranet)
    extranet = "extranet"  # 政务外网区
    internet = "internet"  # 互联网区 (internet-facing, behind the extranet's egress)


class GoldenNetwork(StrEnum):
    """The national golden networks (金字工程, 盘政办发〔2017〕144号): integrated only as the state deploys them."""

    jinshui = "金税"
    jinguan = "金关"
    jincai = "金财"
    jinshen = "金审"
    jindun = "金盾"
    jinhong = "金宏"
    jinbao = "金保"
    jintu = "金土"
    jinnong = "金农"
    jinshui_water = "金水"
    jinzhi = "金质"
    jinan = "金安"
    jinxin = "金信"


class OsFamily(StrEnum):
    """Package-manager family, as Ansible's ansible_os_family groups it."""

    debian = "debian"
    redhat = "redhat"


class Platform(StrEnum):
    huawei_vrp = "huawei_vrp"
    huawei_vrpv8 = "huawei_vrpv8"
    hp_comware = "hp_comware"
    cisco_ios = "cisco_ios"
    ruijie_os = "ruijie_os"

    @property
    def netmiko_device_type(self) -> str:
        """netmiko calls VRP5 plain `huawei`; the other names are netmiko's own."""
        return "huawei" if self is Platform.huawei_vrp else self.value


class DeviceRole(StrEnum):
    access = "access"
    aggregation = "aggregation"
    core = "core"


class SubnetKind(StrEnum):
    source = "source"  # departments' own machine rooms
    cloud = "cloud"  # the government cloud
    management = "management"  # network devices' management addresses
    service = "service"  # gateways and shared services


class Model(BaseModel):
    """Strict base: unknown keys are errors, so a typo never silently drops a setting."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class Located(Model):
    """A top-level record that remembers where it was declared, for error messages."""

    _origin: Any = PrivateAttr(default=None)


# --- secrets and access ------------------------------------------------------------------------


class SecretRef(Model):
    """A secret by reference only: the inventory never holds a password itself."""

    env: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")] | None = None
    file: AbsPath | Annotated[str, AfterValidator(_single_line)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' (variable name) or 'file' (path)")
        return self

    def resolve(self, root: Path) -> str:
        """Read the secret at the moment of use; the value is never stored or logged."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise LookupError(f"environment variable {self.env} is not set (it holds a device password)")
            return value
        path = (root / Path(self.file).expanduser()) if self.file else root
        try:
            return path.read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            raise LookupError(f"cannot read secret file {path}: {exc.strerror}") from exc


class SSH(Model):
    user: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")] | None = None
    port: Port | None = None
    key: Text | None = None  # private key file; relative paths are relative to the inventory dir
    known_hosts: Text | None = None


class DeviceCredentials(Model):
    username: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
    password: SecretRef
    secret: SecretRef | None = None  # enable / super password


# A `jump:` value: the name of a `jump_hosts` record, or `none` (reach the host directly, overriding a less
# specific jump host). The name `none` is therefore not a jump host's.
JUMP_NONE = "none"
JumpRef = Ident


class JumpHost(Located):
    """A jump host (堡垒机, bastion): the control node reaches hosts behind it only through TCP forwarding in its
    sshd. It is a record of its own, like a host: address, port, user, key and known_hosts entry (a key file by
    path, never a secret inline), and, for a chain of two, the jump host in front of it."""

    name: Ident
    address: IPAddress
    ssh: SSH = SSH()  # user, port, key, known_hosts; what is unset comes from defaults.ssh
    jump: Ident | None = None  # the outer jump host of a chain of two (no further: validate.py)


class Defaults(Located):  # located: a bad `jump` is reported at its line
    ssh: SSH = SSH()
    device_credentials: DeviceCredentials | None = None
    jump: JumpRef | None = None  # the city-wide jump host; departments, subnets and hosts may override it


# --- organisation ------------------------------------------------------------------------------


class Department(Located):
    code: Ident
    name: Text
    level: DeptLevel
    parent: Ident | None = None
    jump: JumpRef | None = None  # its hosts' jump host (a host's subnet or the host itself may override it)


class Scope(Model):
    user_units: list[Text] = Field(min_length=1)
    declared_users: Annotated[int, Field(ge=0)]


class Approval(Model):
    department: Text  # the approving authority, by name (often outside the inventory)
    date: dt.date


class Funding(Model):
    source: Text
    amount: Annotated[Decimal, Field(ge=0, decimal_places=2)]  # yuan


class ProtectionScheme(StrEnum):
    """Which protection a system is under: classified systems follow 分级保护, the others 等级保护."""

    dengbao = "dengbao"  # 等级保护 (GB/T 22239-2019): a level 1-4, filed (备案) from level 2
    fenbao = "fenbao"  # 分级保护 (BMB17/BMB20): graded, approved and assessed by the confidential bureau


class Protection(Model):
    """The protection scheme: 等保 with its level and filing (备案) number, or 分保, which the confidential
    bureau (保密局/机要局) grades, approves and assesses itself, so nothing of it is recorded here."""

    scheme: ProtectionScheme = ProtectionScheme.dengbao
    level: Annotated[int, Field(ge=1, le=4)] | None = None  # 等保 only
    filing_number: Annotated[str, Field(pattern=r"^[0-9A-Za-z-]{6,40}$")] | None = None  # 等保 only

    @model_validator(mode="after")
    def _fields_of_the_scheme(self) -> Protection:
        if self.scheme is ProtectionScheme.dengbao and self.level is None:
            raise ValueError("level: a 等保 (dengbao) system declares its level, 1-4")
        if self.scheme is ProtectionScheme.fenbao and (self.level is not None or self.filing_number is not None):
            raise ValueError("a 分保 (fenbao) system declares no 等保 level or filing number: the confidential "
                             "bureau grades and approves it")
        return self


class Service(Model):
    name: Ident
    host: Ident
    port: Port
    protocol: Literal["tcp", "udp"] = "tcp"
    health_url: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] | None = None


class Priority(Model):
    """轻重缓急 (开平市 开府〔2020〕3号): how urgent the move is and how important the system is, 1-5."""

    urgency: Annotated[int, Field(ge=1, le=5)] = 3
    importance: Annotated[int, Field(ge=1, le=5)] = 3


# --- the information resource catalog (政务信息资源目录) ------------------------------------------


class ShareType(StrEnum):
    """共享类型, as the documents (盘政办发〔2017〕144号, 呼政办发〔2018〕27号) fix them."""

    unconditional = "unconditional"  # 无条件共享
    conditional = "conditional"  # 有条件共享: its conditions and scope stated
    not_shared = "not_shared"  # 不予共享: its legal basis cited


class ShareMethod(StrEnum):
    """共享方式."""

    query = "query"  # 信息查询
    download = "download"  # 批量下载
    interface = "interface"  # 系统对接 (through the data-sharing exchange platform)


def _catalog_value(enumeration: str) -> Any:
    """A field whose values are policy data (catalog/policy.yaml): read at validation, so an auditor's change
    needs no code change, and every resource is checked against the same list the survey offers."""

    def check(value: str) -> str:
        from catalog.model import load_policy  # the catalog domain imports the inventory: imported at use

        known = load_policy().values(enumeration)
        if value not in known:
            shown = "、".join(f"{code} ({label.zh})" for code, label in known.items())
            raise ValueError(f"'{value}' is not one of: {shown} (catalog/policy.yaml {enumeration})")
        return value

    return AfterValidator(check)


class DataResource(Model):
    """One entry of the information resource catalog, declared by the system that holds the data. The fields
    are the documents', in their order; `location` (where the data lives: a database's host:port or a data
    path) is jiyue's, so that collection can tell which candidates a declared resource already covers.

    The conditional rules are field validators, not a model validator: they run beside every other field's
    check, so a resource missing its format and its legal basis is told both at once (defaults are validated
    too: an absent legal basis is checked like a written one)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False, validate_default=True)

    name: Text  # 信息资源名称
    classification: Annotated[Text, _catalog_value("classifications")]  # 信息资源分类
    description: LongText  # 信息资源摘要 (content description)
    office: Text  # 信息资源提供方: the providing office (科室)
    format: Annotated[Text, _catalog_value("formats")]  # 信息资源格式
    update_cycle: Annotated[Text, _catalog_value("update_cycles")]  # 更新周期
    publish_date: dt.date  # 发布日期
    share_type: ShareType  # 共享类型
    conditions: LongText | None = None  # 共享条件 (有条件共享)
    scope: Text | None = None  # 共享范围 (有条件共享)
    legal_basis: LongText | None = None  # 不予共享依据
    share_method: ShareMethod | None = None  # 共享方式 (none for 不予共享)
    open_attribute: Annotated[Text, _catalog_value("open_attributes")]  # 开放属性
    purpose: LongText  # 用途
    location: Text | None = None

    @field_validator("conditions", "scope")
    @classmethod
    def _conditional(cls, value: str | None, info: ValidationInfo) -> str | None:
        share = info.data.get("share_type")
        what = "its conditions (共享条件)" if info.field_name == "conditions" else "its scope (共享范围)"
        if share is ShareType.conditional and not value:
            raise ValueError(f"有条件共享 (conditional) must state {what}")
        if share in (ShareType.unconditional, ShareType.not_shared) and value:
            raise ValueError(f"only 有条件共享 (conditional) states {what}; this resource is {share.value}")
        return value

    @field_validator("legal_basis")
    @classmethod
    def _basis(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("share_type") is ShareType.not_shared and not value:
            raise ValueError("不予共享 (not_shared) must cite its legal basis (不予共享依据): the law, regulation "
                             "or policy document that forbids sharing it")
        return value

    @field_validator("share_method")
    @classmethod
    def _method(cls, value: ShareMethod | None, info: ValidationInfo) -> ShareMethod | None:
        share = info.data.get("share_type")
        if value is None and share in (ShareType.unconditional, ShareType.conditional):
            raise ValueError("a shared resource states its share method (共享方式): query (信息查询), download "
                             "(批量下载) or interface (系统对接)")
        return value


class CatalogSettings(Located):
    """The `catalog` section: what the catalog needs to know of the city beyond its systems' resources."""

    # The system that is the city's data-sharing exchange platform (政务数据共享交换平台): connections to it
    # propose 系统对接 resources of the systems that make them.
    exchange_platform: Ident | None = None


class System(Located):
    """One archive record (档案库): the fields Panjin (盘政办发〔2017〕144号) and Hezhou ask auditors to keep."""

    id: Ident
    name: Text
    department: Ident
    office: Text | None = None
    function: LongText
    category: Category
    scope: Scope
    frequency: Frequency
    approval: Approval
    funding: Funding
    build_year: Annotated[int, Field(ge=1980, le=2100)]
    vendor: Text
    classification: Classification
    protection: Protection
    zone: Zone
    golden_network: GoldenNetwork | None = None
    website: bool = False
    hosts: list[Ident] = []
    services: list[Service] = []
    data_paths: list[AbsPath] = []
    log_paths: list[AbsPath] = []
    depends_on: list[Ident] = []
    special_hardware: Text | None = None
    replaced_by: Ident | None = None
    priority: Priority = Priority()
    # The longest outage the department accepts at cutover (freeze to verified), in seconds.
    downtime_budget: Annotated[int, Field(ge=1)] = 300
    overlaps_with: list[Ident] = []
    resources: list[DataResource] = []  # its entries of the information resource catalog (政务信息资源目录)


class Host(Located):
    name: Ident
    address: IPAddress
    os_family: OsFamily
    os: Text  # the declared distribution and version, e.g. "Kylin V10 SP2"
    role: Ident
    ssh: SSH = SSH()
    jump: JumpRef | None = None  # the most specific jump host setting: wins over subnet, department, defaults


# --- network -----------------------------------------------------------------------------------


class Interface(Model):
    # Vendor names such as Vlanif100, GigabitEthernet0/0/1, 10GE1/0/1; no spaces (templates add
    # Ruijie's "GigabitEthernet 0/1" spacing themselves).
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9/.:-]{0,47}$")]
    description: Annotated[Text, Field(max_length=80)] | None = None
    vlan: Annotated[int, Field(ge=1, le=4094)] | None = None
    department: Ident | None = None
    golden_network: GoldenNetwork | None = None


class Device(Located):
    name: Ident
    platform: Platform
    address: IPAddress  # management address
    port: Port = 22
    site: Text
    role: DeviceRole
    department: Ident | None = None
    golden_network: GoldenNetwork | None = None
    credentials: DeviceCredentials | None = None  # falls back to defaults.device_credentials
    interfaces: list[Interface] = []
    # The device this one's extranet default routes point to, over an interconnect VLAN both have
    # (network/: egress devices route to their egress instead and need none).
    upstream: Ident | None = None
    jump: JumpRef | None = None  # the jump host its sessions go through: wins over subnet, department, defaults


class Subnet(Located):
    name: Ident
    kind: SubnetKind
    prefix: IPNetwork
    gateway: IPAddress
    jump: JumpRef | None = None  # the jump host of its hosts (wins over the department's and the defaults')


class DeptAllocation(Model):
    department: Ident
    ipv4: ipaddress.IPv4Network
    ipv6: IPv6Network


IPv6Interface = Annotated[ipaddress.IPv6Interface, AfterValidator(_unscoped)]


class Egress(Model):
    """One carrier exit: the egress device's carrier-facing port, its own addresses on the carrier link, and the
    carrier's next hops there. network/ renders the port as a routed port in the extranet VPN and the VPN's
    default routes to the next hops; the next hop of each family must lie in the port's subnet of that family."""

    name: Ident
    device: Ident
    interface: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9/.:-]{0,47}$")]  # e.g. GE1/0/1 (no spaces)
    ipv4: ipaddress.IPv4Interface  # the device's address with the link's prefix, e.g. 203.0.113.2/30
    ipv6: IPv6Interface  # e.g. 2001:db8:ffff:1::2/64
    ipv4_next_hop: ipaddress.IPv4Address
    ipv6_next_hop: IPv6Address
    description: Annotated[Text, Field(max_length=80)] | None = None  # default: the interface's, else "<name> egress"


class Interconnect(Model):
    """The city's pool for interconnect VLANs (VLAN interfaces without a department) between extranet devices."""

    ipv4: ipaddress.IPv4Network
    ipv6: IPv6Network
    ipv4_prefix: Annotated[int, Field(ge=8, le=30)] = 28  # each interconnect VLAN's IPv4 subnet; IPv6 is a /64


class Ospfv3(Model):
    """OSPFv3 in the extranet VPN on the listed devices (router ID: the device's IPv4 management address)."""

    process: Annotated[int, Field(ge=1, le=65535)] = 1
    area: Annotated[int, Field(ge=0, le=4294967295)] = 0
    devices: list[Ident] = Field(min_length=1)


class Management(Model):
    """Per-city values of the management baseline network/ renders (等保 2.0 8.1.4.3, 8.1.4.4 c)."""

    syslog_hosts: list[IPAddress] = Field(min_length=1)
    ntp_servers: list[IPAddress] = Field(min_length=1)
    # Who may open a management session (vty ACL); default: the inventory's management subnets.
    sources: list[IPNetwork] = []


class InternetProbe(Model):
    """The internet test address the egress probe traces towards, and the extranet's first hops: a path through
    one of them leaves by the extranet's egress (统一使用电子政务外网访问互联网), one through a line's
    `next_hop` by that line."""

    address: IPAddress
    extranet_hops: list[IPAddress] = Field(min_length=1)
    max_hops: Annotated[int, Field(ge=1, le=30)] = 4


class Extranet(Located):
    """The e-government extranet (电子政务外网) as one VPN instance, dual-stack (开府〔2020〕3号, IPv6)."""

    vpn_instance: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,30}$")]
    rd: Annotated[str, Field(pattern=r"^([0-9]{1,10}|[0-9]{1,3}(\.[0-9]{1,3}){3}):[0-9]{1,10}$")]
    ipv4: ipaddress.IPv4Network
    ipv6: IPv6Network
    departments: list[DeptAllocation] = []
    egress: list[Egress] = Field(min_length=1)
    vlan_ipv4_prefix: Annotated[int, Field(ge=8, le=30)] = 24  # each department VLAN's IPv4 subnet; IPv6: a /64
    interconnect: Interconnect | None = None
    ospfv3: Ospfv3 | None = None
    management: Management | None = None
    internet_probe: InternetProbe | None = None

    @model_validator(mode="after")
    def _ipv6_size(self) -> Extranet:
        if self.ipv6.prefixlen > 48:
            raise ValueError(f"ipv6: the city block must be a /48 or larger, got /{self.ipv6.prefixlen}")
        return self


class Flavor(Model):
    name: Ident
    vcpus: Annotated[int, Field(ge=1)]
    memory_gb: Annotated[int, Field(ge=1)]
    disk_gb: Annotated[int, Field(ge=1)]


class PoolHost(Model):
    host: Ident
    flavor: Ident
    zone: CloudZone  # the one network zone this host serves (one of `cloud.zones`)


class Cloud(Located):
    """The government cloud's side: what migration targets exist and how clients reach systems."""

    flavors: list[Flavor] = Field(min_length=1)
    # The network zones this city's cloud has (政务外网区, 互联网区, 内网平台): a system whose category needs a
    # zone the city lacks waits for it (migrations/planning.yaml `routing`), it never goes to another.
    zones: list[CloudZone] = Field(min_length=1)
    pool: list[PoolHost] = Field(min_length=1)
    gateway: Ident  # the host whose reverse proxy / name service clients use


# --- monitoring sources ---------------------------------------------------------------------------


class MatchBy(StrEnum):
    """How a monitoring series finds its inventory host: by the host's address (the `instance` label's host
    part, as Prometheus sets it from the scrape target) or by the `instance` label naming the host."""

    address = "address"
    instance = "instance"


class PrometheusSource(Model):
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")]  # the server's base URL, e.g. http://prom:9090
    match: MatchBy = MatchBy.address
    timeout: Annotated[float, Field(gt=0, le=600)] = 60.0  # seconds per query


class ZabbixMatch(StrEnum):
    """How a Zabbix host finds its inventory host: by the address of one of its interfaces (agent, SNMP, …),
    or by its technical host name (`host`, not the visible name) being the inventory host's name."""

    address = "address"
    name = "name"


class ZabbixSource(Model):
    """A Zabbix server's JSON-RPC API (the frontend's api_jsonrpc.php) and the user jiyue logs in as. The
    password is a reference (file or environment variable), read at the moment of login, never logged."""

    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")]  # e.g. http://zbx/zabbix/api_jsonrpc.php
    user: Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_single_line)]
    password: SecretRef
    match: ZabbixMatch = ZabbixMatch.address
    timeout: Annotated[float, Field(gt=0, le=600)] = 60.0  # seconds per API call


class Monitoring(Located):
    """Monitoring the city already runs, whose utilisation history the audit imports (`audit.history --from
    prometheus|zabbix`): Prometheus (node_exporter's metrics) and Zabbix (the "Linux by Zabbix agent"
    template's items), either or both."""

    prometheus: PrometheusSource | None = None
    zabbix: ZabbixSource | None = None


# --- machine rooms (机房腾退) -----------------------------------------------------------------------


class RoomStatus(StrEnum):
    """Where a department's machine room stands in the consolidation (盘政办发〔2017〕144号, 机房腾退)."""

    kept = "kept"  # 保留: the one independent room Panjin allows, with the leading group's approval
    vacating = "vacating"  # 腾退中: its systems are moving out
    vacated = "vacated"  # 已腾退: empty, the space goes back


class RoomReason(StrEnum):
    """The two grounds on which Panjin lets a department keep a room."""

    network_access = "network_access"  # 网络接入设备
    confidentiality = "confidentiality"  # 保密需要


class EquipmentKind(StrEnum):
    server = "server"
    storage = "storage"
    network = "network"
    security = "security"
    power = "power"  # UPS, distribution
    cooling = "cooling"  # precision air conditioning
    rack = "rack"
    other = "other"


class Equipment(Model):
    """Equipment in a room that is not an inventory host or device: what remains, or what the
    consolidation retired (a network device of a cancelled leased line, a UPS of a vacated room)."""

    kind: EquipmentKind
    name: Text  # model or description, e.g. "华为 AR2220 路由器"
    count: Annotated[int, Field(ge=1)] = 1
    year: Annotated[int, Field(ge=1980, le=2100)] | None = None  # year acquired: its service life counts from it
    retired: bool = False  # freed by the consolidation: on the asset list for disposal


class RoomApproval(Model):
    """The leading group's decision to keep a room (经市智慧城市建设与大数据应用开发工作领导小组审议)."""

    body: Text
    date: dt.date
    document: Text | None = None  # minutes or document number


class MachineRoom(Located):
    """A department's own machine room: where it is, how big, what is still in it."""

    id: Ident
    department: Ident
    address: Text
    area_m2: Annotated[Decimal, Field(gt=0, decimal_places=1)]
    status: RoomStatus
    reason: RoomReason | None = None  # why it is kept
    hosts: list[Ident] = []  # inventory hosts standing in it
    equipment: list[Equipment] = []
    approval: RoomApproval | None = None

    @property
    def remains(self) -> list[str]:
        """What is still in the room: its hosts, then the equipment not retired."""
        return [*self.hosts, *(f"{e.name} ×{e.count}" if e.count > 1 else e.name
                               for e in self.equipment if not e.retired)]


# --- the programme: dated milestones (督查通报) ---------------------------------------------------


class Measure(StrEnum):
    """What a milestone counts, each measured by jiyue from the inventory and the store (progress/measures.py),
    never typed in: the fixed set the progress report (`invoke report.progress`) knows."""

    archived = "archived"  # systems archived with every required field (档案库)
    zombies_decommissioned = "zombies_decommissioned"  # zombie systems taken offline, hosts freed (清理下线)
    migrated = "migrated"  # non-classified systems migrated onto the government cloud (迁移上云)
    websites = "websites"  # department websites moved to the site cluster (网站集约化)
    exchange = "exchange"  # systems connected to the data-sharing exchange platform (共享交换平台)
    leased_lines = "leased_lines"  # departments' own leased internet lines cancelled (互联网专线)
    extranet_coverage = "extranet_coverage"  # towns and villages (镇/街道, 村/居) on the extranet (外网覆盖)
    baseline = "baseline"  # hosts passing their 等保 baseline (等级保护)


ALL_DEPARTMENTS = "all"


class Milestone(Model):
    """One dated target (Panjin 盘政办发〔2017〕144号 sets such dates: 2017-12, 2018-03, 2018-06): by `due`, the
    measure reaches 100 % in the departments it covers. `start` is when the work began, from which the
    progress report expects a linear share (default: the programme's start)."""

    name: Text
    due: dt.date
    measure: Measure
    departments: list[Ident] | Literal["all"] = ALL_DEPARTMENTS
    start: dt.date | None = None
    description: LongText | None = None

    @model_validator(mode="after")
    def _dates(self) -> Milestone:
        if self.start is not None and self.start >= self.due:
            raise ValueError(f"start {self.start} must come before due {self.due}")
        return self


class Programme(Located):
    """The city's consolidation programme: its milestones, reported on by `invoke report.progress`
    (通报工作进度和成效). The `exchange` measure counts connections to the system `catalog.exchange_platform`
    names: one declaration for the catalog and the programme."""

    start: dt.date
    milestones: list[Milestone] = Field(min_length=1)
# --- leased lines and business private networks (专线、业务专网) ------------------------------------


class LeasedLine(Located):
    """A department's own leased internet line (互联网专线). Panjin (盘政办发〔2017〕144号) cancels them: the
    department reaches the internet through the extranet's egress instead, so the record keeps what the
    cancellation needs (the carrier and circuit to name in the notice, the contract to end, the cost saved)
    and what it serves (the hosts or subnets whose systems must move first)."""

    id: Ident
    department: Ident
    carrier: Text  # 运营商, e.g. 中国电信
    circuit_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9/._:-]{0,63}$")]  # 电路编号
    bandwidth_mbps: Annotated[int, Field(ge=1, le=1_000_000)]
    annual_cost: Annotated[Decimal, Field(ge=0, decimal_places=2)]  # yuan a year
    contract_end: dt.date
    purpose: Text
    hosts: list[Ident] = []
    subnets: list[IPNetwork] = []
    # The line's router on the department's side, which the served hosts route the internet through: how the
    # egress probe recognises traffic leaving by this line.
    next_hop: IPAddress | None = None
    cancelled_on: dt.date | None = None  # the day the carrier confirmed the cancellation (撤销)

    @model_validator(mode="after")
    def _serves_something(self) -> LeasedLine:
        if not self.hosts and not self.subnets:
            raise ValueError("hosts, subnets: name the hosts or subnets the line serves (its cancellation waits "
                             "for their systems to move)")
        return self


class NetworkOwner(StrEnum):
    """Who runs a business private network: a ministry's (national) or a provincial department's."""

    national = "national"  # 国家部委
    provincial = "provincial"  # 省级部门


class BoundaryDevice(Model):
    """A device at the private network's boundary (边界设备), where it meets the department's extranet VLAN."""

    name: Text  # e.g. "公积金专网边界路由器"
    address: IPAddress  # its address on the department's extranet VLAN: the next hop of the joined prefixes
    model: Text | None = None


class Join(Model):
    """How a qualifying private network joins the extranet: through this department VLAN (an extranet VLAN
    interface of the department), its prefixes let in by that VLAN's boundary ACL."""

    vlan: Annotated[int, Field(ge=1, le=4094)]


class PrivateNetwork(Located):
    """A business private network (业务专网). Hezhou asks for a clear boundary and, step by step, one network;
    Panjin merges the qualifying ones into the extranet. A national golden network never qualifies: it is
    integrated only as the state deploys it."""

    id: Ident
    name: Text
    department: Ident  # the department whose systems use it (and whose VLAN it joins through)
    owner: NetworkOwner
    owner_name: Text  # the ministry or provincial department, e.g. 省住房和城乡建设厅
    qualifies: bool  # whether it qualifies to join the extranet (the owner's consent, a clear boundary)
    reason: Text | None = None  # why not, when it does not qualify
    golden_network: GoldenNetwork | None = None
    systems: list[Ident] = []  # the inventory systems on it (zone: private)
    prefixes: list[IPNetwork] = []  # its address space, let into the extranet when it joins
    boundary_devices: list[BoundaryDevice] = Field(min_length=1)
    join: Join | None = None

    @model_validator(mode="after")
    def _qualifies_or_says_why(self) -> PrivateNetwork:
        if self.golden_network is not None and self.qualifies:
            raise ValueError(f"qualifies: the golden network {self.golden_network} is integrated only as the state "
                             "deploys it (盘政办发〔2017〕144号): it never joins the extranet locally")
        if self.qualifies and (self.join is None or not self.prefixes):
            raise ValueError("join, prefixes: a qualifying private network names the department VLAN it joins "
                             "through (join.vlan) and the prefixes the extranet lets in")
        if not self.qualifies and self.reason is None:
            raise ValueError("reason: say why it does not qualify (the owner's decision, no clear boundary, ...)")
        if len(self.prefixes) > 9:
            raise ValueError("prefixes: at most 9 (each becomes one rule of the VLAN's boundary ACL)")
        return self


# --- the whole ---------------------------------------------------------------------------------

LIST_SECTIONS: dict[str, tuple[type[Located], str]] = {
    "departments": (Department, "code"),
    "systems": (System, "id"),
    "hosts": (Host, "name"),
    "devices": (Device, "name"),
    "subnets": (Subnet, "name"),
    "machine_rooms": (MachineRoom, "id"),
    "jump_hosts": (JumpHost, "name"),
    "leased_lines": (LeasedLine, "id"),
    "private_networks": (PrivateNetwork, "id"),
}
SINGLE_SECTIONS: dict[str, type[Model]] = {"defaults": Defaults, "extranet": Extranet, "cloud": Cloud,
                                           "monitoring": Monitoring, "programme": Programme,
                                           "catalog": CatalogSettings}
DRAFT_KEY = "draft"
# A chain of two jump hosts at most (a regional bastion in front of a department's): a longer one is a design
# to question, and each hop adds a handshake to every connection.
MAX_JUMP_CHAIN = 2


@dataclass(frozen=True)
class Draft:
    """A record marked `draft: true`: proposed by an importer (an Ansible inventory, a scan) and still lacking
    required archive fields. Its fields are checked as written, the missing ones are listed (`inventory.check`
    shows it as incomplete), and it stays out of `Inventory.systems`/`hosts`/…, so nothing plans, migrates,
    judges, exports or connects to it until someone completes it and the `draft` mark goes."""

    section: str
    key: str
    data: dict[str, Any]  # as written, without the mark
    missing: tuple[str, ...]  # dotted paths of the required fields still absent
    origin: Any = None


class Inventory(Model):
    """A validated city. Built only by `inventory.load`, which also runs the cross-record checks."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    root: Any  # pathlib.Path of the inventory directory
    defaults: Defaults = Defaults()
    departments: dict[str, Department] = {}
    systems: dict[str, System] = {}
    hosts: dict[str, Host] = {}
    devices: dict[str, Device] = {}
    subnets: dict[str, Subnet] = {}
    machine_rooms: dict[str, MachineRoom] = {}
    jump_hosts: dict[str, JumpHost] = {}
    leased_lines: dict[str, LeasedLine] = {}
    private_networks: dict[str, PrivateNetwork] = {}
    extranet: Extranet | None = None
    cloud: Cloud | None = None
    monitoring: Monitoring | None = None
    programme: Programme | None = None
    catalog: CatalogSettings = CatalogSettings()
    drafts: dict[str, dict[str, Draft]] = {}  # section -> key -> draft (incomplete, kept apart)

    @property
    def identity(self) -> str:
        """What plans are keyed by and checked against: the directory's full path, so two cities kept in
        directories of one name are two inventories."""
        return str(Path(self.root).resolve())

    def plan_file(self, directory: Path) -> Path:
        """`directory/<dir name>-<8 hex of the identity>.yaml`: one plan file per inventory, still readable."""
        digest = hashlib.sha256(self.identity.encode()).hexdigest()[:8]
        return directory / f"{Path(self.identity).name}-{digest}.yaml"

    def foreign_plan(self, recorded: str) -> str | None:
        """Why a plan recorded for `recorded` is not this inventory's; None when it is."""
        if recorded == self.identity:
            return None
        return (f"the plan was made for the inventory {recorded}, not this one ({self.identity}); plan this "
                f"inventory with its own file, or, if this inventory's directory moved, set `inventory: "
                f"{self.identity}` in the plan")

    def owner(self, host: str) -> System | None:
        """The system that lists this host; cloud-pool and gateway hosts have none."""
        return self._owners.get(host)

    @cached_property
    def _owners(self) -> dict[str, System]:
        return {h: s for s in self.systems.values() for h in s.hosts}

    def is_classified(self, host: str) -> bool:
        """Whether the host belongs to a classified (涉密) system: under 分级保护 it is the confidential
        bureau's, and jiyue connects to it only when told to explicitly (`--include-classified`). A host that
        only a draft system lists counts as classified unless the draft declares `non_classified`: what is
        not yet known is not touched."""
        system = self.owner(host)
        if system is not None:
            return system.classification == Classification.classified
        return host in self._draft_unknown_hosts

    @cached_property
    def _draft_unknown_hosts(self) -> set[str]:
        return {h for d in self.drafts.get("systems", {}).values()
                if d.data.get("classification") != Classification.non_classified
                for h in d.data.get("hosts") or [] if isinstance(h, str)}

    def contactable_hosts(self) -> list[str]:
        """Every host jiyue may connect to by default: all but the hosts of classified systems, sorted."""
        return sorted(h for h in self.hosts if not self.is_classified(h))

    def subnet_of(self, address: IPAddress) -> Subnet | None:
        return next((s for s in self.subnets.values() if address in s.prefix), None)

    def path(self, value: str | None) -> Path | None:
        """Paths in the inventory are relative to its directory; `~` means the operator's home."""
        return None if value is None else (self.root / Path(value).expanduser()).resolve()

    def ssh_for(self, host: Host) -> SSHTarget:
        """The host's SSH settings with the inventory defaults filled in."""
        return self._ssh_target(str(host.address), host.ssh)

    def jump_setting(self, record: Host | Device) -> str | None:
        """A host's or device's `jump:` as declared, most specific first: the record, its subnet (of its address),
        its department (a host's system's, a device's own), defaults. None or `none`: direct."""
        subnet = self.subnet_of(record.address)
        if isinstance(record, Device):
            dept = self.departments.get(record.department) if record.department else None
        else:
            system = self.owner(record.name)
            dept = self.departments.get(system.department) if system else None
        for value in (record.jump, subnet.jump if subnet else None, dept.jump if dept else None, self.defaults.jump):
            if value is not None:
                return value
        return None

    def jump_chain(self, record: Host | Device, override: str | None = None) -> list[SSHTarget]:
        """The jump hosts to pass through to reach a host or device, outermost first ([] = direct). `override` is a
        run's `--jump NAME` (or `none`), which replaces the inventory's setting for every host and device."""
        name = override if override is not None else self.jump_setting(record)
        chain: list[SSHTarget] = []
        while name is not None and name != JUMP_NONE:
            if name not in self.jump_hosts:
                known = ", ".join(sorted(self.jump_hosts)) or "-"
                raise LookupError(f"unknown jump host '{name}' (jump_hosts: {known})")
            if len(chain) >= MAX_JUMP_CHAIN:  # validate.py refuses such an inventory; this guards an override
                raise LookupError(f"jump host '{name}': a chain of more than {MAX_JUMP_CHAIN} jump hosts")
            jump = self.jump_hosts[name]
            chain.insert(0, self._ssh_target(str(jump.address), jump.ssh, name=jump.name))
            name = jump.jump
        return chain

    def _ssh_target(self, address: str, ssh: SSH, name: str | None = None) -> SSHTarget:
        d = self.defaults.ssh
        return SSHTarget(address=address, port=ssh.port or d.port or 22, user=ssh.user or d.user or "root",
                         key=self.path(ssh.key or d.key), known_hosts=self.path(ssh.known_hosts or d.known_hosts),
                         name=name)

    def credentials_for(self, device: Device) -> DeviceCredentials:
        creds = device.credentials or self.defaults.device_credentials
        if creds is None:  # validate.py refuses such an inventory; this guards direct construction
            raise LookupError(f"device {device.name} has no credentials")
        return creds


@dataclass(frozen=True)
class SSHTarget:
    address: str
    port: int
    user: str
    key: Path | None
    known_hosts: Path | None
    name: str | None = None  # a jump host's inventory name, for messages
