"""Sample data for the demo: a small rural commercial bank using the bank CRM.

:func:`load_sample_data` fills a database that has the ``examples/bank_crm``
forms published with a bank that looks alive: a department tree (the bank,
its head-office departments, city branches and their sub-branches), staff
accounts (relationship managers, a branch head, head-office staff), a product
catalogue, and customers with holdings, interactions, leads, loan
applications (with their document checklists), complaints and campaigns.

Everything is generated from a seed, so the same seed and the same ``today``
give the same data; dates are relative to ``today`` so that deadlines,
maturities and follow-ups fall around the day the demo runs. Names, ID numbers
(valid check digits, real administrative area codes, birth date and sex
consistent with the record), mobile numbers and social credit codes are made
up, never real people's.

Records are written through :class:`~engine.records.service.RecordStore`
(``create_many``: a few statements per form and staff member, not per
record), so each one is validated against its form and audited like any
other, created and owned by the staff member who looks after it. Their
business dates (when a customer joined, an interaction happened, a complaint
came in) lie in the past; their ``created_at`` is the time of loading, as
after an import of a bank's existing records. Only the departments and staff
accounts, which are system tables, are inserted directly. All of it runs in
the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa

from engine.catalog import Schema, load_schema
from engine.forms.checks import make_cn_id
from engine.records.service import Actor, RecordStore
from engine.system import department_table, user_department_table, user_table
from permissions.org import add_member, rebuild_closure
from permissions.policy import PolicyStore
from runtime.auth.service import create_user

SEED = 20240601
DEFAULT_CUSTOMERS = 300
BANK_NAME = "示范农村商业银行"
CST = dt.timezone(dt.timedelta(hours=8), "CST")

# The forms (and so the app) the generator writes; it refuses to run without them.
SAMPLE_FORMS = (
    "product",
    "customer",
    "holding",
    "interaction",
    "lead",
    "loan_application",
    "complaint",
    "campaign",
    "campaign_member",
)

T = TypeVar("T")


# --- the bank: departments and staff -------------------------------------------------


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    parent: str | None = None
    # Sub-branches only: where their customers live.
    area: str | None = None  # GB/T 2260 county-level code: the first 6 digits of an ID number
    place: str = ""  # province + city + district, as written in an address
    postal_code: str = ""
    streets: tuple[str, ...] = ()


# fmt: off
DEPARTMENTS: tuple[Department, ...] = (
    Department("BANK", BANK_NAME),
    Department("HQ-RETAIL", "零售金融部", "BANK"),
    Department("HQ-CONSUMER", "消费者权益保护部", "BANK"),
    Department("HQ-RISK", "风险管理部", "BANK"),
    Department("HQ-WEALTH", "私人银行部", "BANK"),
    Department("HQ-CC", "客户服务中心", "BANK"),
    Department("OUT-COLLECT", "外包催收团队", "BANK"),
    Department("HZ", "杭州分行", "BANK"),
    Department("NB", "宁波分行", "BANK"),
    Department("WZ", "温州分行", "BANK"),
    Department("SX", "绍兴分行", "BANK"),
    Department("HZ-XH", "西湖支行", "HZ", "330106", "浙江省杭州市西湖区", "310012",
               ("文三路", "天目山路", "古墩路", "教工路", "学院路")),
    Department("HZ-BJ", "滨江支行", "HZ", "330108", "浙江省杭州市滨江区", "310051",
               ("江南大道", "滨盛路", "长河路", "江陵路")),
    Department("HZ-SC", "上城支行", "HZ", "330102", "浙江省杭州市上城区", "310002",
               ("解放路", "庆春路", "望江路", "清泰街")),
    Department("NB-HS", "海曙支行", "NB", "330203", "浙江省宁波市海曙区", "315010",
               ("中山西路", "药行街", "望春路", "柳汀街")),
    Department("NB-YZ", "鄞州支行", "NB", "330212", "浙江省宁波市鄞州区", "315100",
               ("天童南路", "钱湖北路", "首南路", "四明中路")),
    Department("WZ-LC", "鹿城支行", "WZ", "330302", "浙江省温州市鹿城区", "325000",
               ("人民路", "府前街", "车站大道", "学院中路")),
    Department("WZ-OH", "瓯海支行", "WZ", "330304", "浙江省温州市瓯海区", "325005",
               ("温州大道", "娄桥路", "新桥路")),
    Department("SX-YC", "越城支行", "SX", "330602", "浙江省绍兴市越城区", "312000",
               ("解放北路", "胜利东路", "中兴中路", "环城西路")),
    Department("SX-KQ", "柯桥支行", "SX", "330603", "浙江省绍兴市柯桥区", "312030",
               ("笛扬路", "柯桥大道", "华齐路")),
)
# fmt: on
SUB_BRANCHES = tuple(d for d in DEPARTMENTS if d.area)
# Customers who were born elsewhere: real area codes of other provinces' districts.
OTHER_AREAS = (
    "110105",  # 北京市朝阳区
    "310115",  # 上海市浦东新区
    "320102",  # 南京市玄武区
    "340104",  # 合肥市蜀山区
    "360102",  # 南昌市东湖区
    "410105",  # 郑州市金水区
    "420106",  # 武汉市武昌区
    "430104",  # 长沙市岳麓区
    "350102",  # 福州市鼓楼区
    "510107",  # 成都市武侯区
    "522601",  # 凯里市
    "341221",  # 临泉县
)


@dataclass(frozen=True)
class StaffMember:
    username: str
    display_name: str
    department: str
    title: str
    role: str  # a role of examples/bank_crm/roles.json


STAFF: tuple[StaffMember, ...] = (
    StaffMember("hq_zhao", "赵敏", "HQ-RETAIL", "总行零售金融部 · 管理员", "hq_admin"),
    StaffMember("hq_sun", "孙立", "HQ-CONSUMER", "总行消费者权益保护部", "hq_admin"),
    StaffMember("risk_qian", "钱坤", "HQ-RISK", "总行风险管理部 · 风险经理", "risk_officer"),
    StaffMember("branch_li", "李建国", "HZ-XH", "西湖支行行长", "branch_head"),
    StaffMember("rm_wang", "王芳", "HZ-XH", "西湖支行客户经理", "relationship_manager"),
    StaffMember("rm_chen", "陈磊", "HZ-XH", "西湖支行客户经理", "relationship_manager"),
    StaffMember("rm_liu", "刘洋", "HZ-BJ", "滨江支行客户经理", "relationship_manager"),
    StaffMember("rm_zhu", "朱琳", "HZ-BJ", "滨江支行客户经理", "relationship_manager"),
    StaffMember("rm_zhang", "张静", "HZ-SC", "上城支行客户经理", "relationship_manager"),
    StaffMember("rm_yang", "杨帆", "NB-HS", "海曙支行客户经理", "relationship_manager"),
    StaffMember("rm_huang", "黄丽", "NB-YZ", "鄞州支行客户经理", "relationship_manager"),
    StaffMember("rm_zhou", "周杰", "WZ-LC", "鹿城支行客户经理", "relationship_manager"),
    StaffMember("rm_wu", "吴婷", "WZ-OH", "瓯海支行客户经理", "relationship_manager"),
    StaffMember("rm_xu", "徐明", "SX-YC", "越城支行客户经理", "relationship_manager"),
    StaffMember("rm_ma", "马超", "SX-KQ", "柯桥支行客户经理", "relationship_manager"),
    StaffMember("wm_he", "何静", "HQ-WEALTH", "私人银行部 · 财富顾问", "wealth_team"),
    StaffMember("cc_gao", "高雅", "HQ-CC", "客户服务中心 · 坐席", "call_center_agent"),
    StaffMember("col_lin", "林涛", "OUT-COLLECT", "外包催收专员", "outsourced_collector"),
)
STAFF_BY_USERNAME = {s.username: s for s in STAFF}


def ensure_departments(conn: sa.Connection, *, now: dt.datetime) -> dict[str, int]:
    """The bank's department tree in ``ff_department`` (missing ones added): code -> id.

    Inserted level by level in bulk, then the closure table (what department
    scopes read) is rebuilt once for the whole tree.
    """
    t = department_table
    ids = {r.code: int(r.id) for r in conn.execute(sa.select(t.c.code, t.c.id))}
    known = len(ids)
    for level in _levels(DEPARTMENTS):
        missing = [
            {"code": d.code, "name": d.name, "parent_id": ids[d.parent] if d.parent else None}
            for d in level
            if d.code not in ids
        ]
        if missing:
            conn.execute(sa.insert(t), missing)
            codes = [d["code"] for d in missing]
            rows = conn.execute(sa.select(t.c.code, t.c.id).where(t.c.code.in_(codes)))
            ids.update({r.code: int(r.id) for r in rows})
    if len(ids) > known:
        rebuild_closure(conn, actor_id=None, now=now)
    return ids


def _levels(departments: Sequence[Department]) -> list[list[Department]]:
    depth: dict[str, int] = {}
    for d in departments:  # parents come first in DEPARTMENTS
        depth[d.code] = 0 if d.parent is None else depth[d.parent] + 1
    return [[d for d in departments if depth[d.code] == n] for n in range(max(depth.values()) + 1)]


def ensure_staff(
    conn: sa.Connection,
    *,
    now: dt.datetime,
    password_hash: Callable[[], str | None] = lambda: None,
    only: Sequence[str] | None = None,
) -> dict[str, int]:
    """The staff accounts of :data:`STAFF` (existing ones kept as they are): username -> id.

    ``password_hash`` is called once, only if an account has to be created,
    and its hash is given to every new account (``None``: no password login).
    ``only`` limits the accounts created to those usernames.
    """
    wanted = [s for s in STAFF if only is None or s.username in only]
    usernames = [s.username for s in wanted]
    ids = {
        r.username: int(r.id)
        for r in conn.execute(
            sa.select(user_table.c.username, user_table.c.id).where(
                user_table.c.username.in_(usernames)
            )
        )
    }
    missing = [s for s in wanted if s.username not in ids]
    if not missing:
        return ids
    digest = password_hash()
    for s in missing:
        ids[s.username] = create_user(
            conn, username=s.username, password=None, display_name=s.display_name, now=now
        )
    if digest is not None:
        conn.execute(
            sa.update(user_table)
            .where(user_table.c.id.in_([ids[s.username] for s in missing]))
            .values(password_hash=digest)
        )
    return ids


def ensure_staff_access(conn: sa.Connection, staff: dict[str, int], *, now: dt.datetime) -> None:
    """Each staff member in their department (primary) and holding their role.

    Through the audited administration functions, like an administrator's
    changes; what is already there is left alone, so a second run changes
    nothing. The roles themselves come from the app's roles.json.
    """
    m = user_department_table
    placed = set(
        conn.execute(sa.select(m.c.user_id).where(m.c.user_id.in_(list(staff.values())))).scalars()
    )
    store = PolicyStore(conn, actor_id=None, now=now)
    for s in STAFF:
        user_id = staff.get(s.username)
        if user_id is None:
            continue
        if user_id not in placed:
            add_member(
                conn, user_id=user_id, dept_code=s.department, primary=True, actor_id=None, now=now
            )
        store.assign_role(user_id, s.role)


# --- what was loaded ---------------------------------------------------------------------


@dataclass
class SampleReport:
    departments: int = 0
    staff: int = 0
    records: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.records.values())

    def describe(self) -> str:
        parts = [f"{n} {form}" for form, n in self.records.items()]
        return ", ".join(parts)


def missing_forms(schema: Schema) -> list[str]:
    """The sample forms this database has not published (empty: it can take sample data)."""
    return [key for key in SAMPLE_FORMS if key not in schema.forms]


def count_customers(conn: sa.Connection, schema: Schema) -> int:
    table = schema.form("customer").table
    return int(
        conn.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.deleted_at.is_(None))
        ).scalar_one()
    )


def load_sample_data(
    conn: sa.Connection,
    *,
    customers: int = DEFAULT_CUSTOMERS,
    seed: int = SEED,
    today: dt.date | None = None,
    now: dt.datetime | None = None,
    staff_password_hash: Callable[[], str | None] = lambda: None,
) -> SampleReport:
    """Generate the sample bank into ``conn``'s transaction (see the module's docstring).

    ``today`` anchors every date (default: today in China Standard Time);
    ``now`` is the latest time a record may carry (default: now, or noon of a
    given ``today``). Staff accounts get ``staff_password_hash()``.
    """
    if now is None:
        real_now = dt.datetime.now(CST)
        now = real_now if today is None or today == real_now.date() else _at(today, 12, 0)
    today = today or now.astimezone(CST).date()
    schema = load_schema(conn)
    if missing := missing_forms(schema):
        raise ValueError(f"sample data needs the bank CRM forms; missing: {', '.join(missing)}")
    departments = ensure_departments(conn, now=now)
    staff = ensure_staff(conn, now=now, password_hash=staff_password_hash)
    ensure_staff_access(conn, staff, now=now)
    generator = _Generator(conn, schema, random.Random(seed), today, now, departments, staff)
    generator.run(customers)
    return SampleReport(len(departments), len(staff), generator.counts)


# --- the generator -----------------------------------------------------------------------------

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵"
)
# Zipf-like: the common surnames much more often, as in life.
SURNAME_WEIGHTS = tuple(1.0 / (i + 3) for i in range(len(SURNAMES)))
MALE_CHARS = (
    "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆旭宁龙林阳晨峰建国志文博天子睿轩泽豪航铭嘉"
)
FEMALE_CHARS = "芳娜敏静丽艳娟霞秀玲燕婷雪慧琳颖倩洁晶萍红梅莉欣怡佳悦琪雯璐思彤涵诗梦雨欢月晓"
MOBILE_PREFIXES = (  # noqa: SIM905 - a table of prefixes reads best as one string
    "130 131 132 133 135 136 137 138 139 150 151 152 153 155 156 157 158 159 166 "
    "173 175 176 177 180 181 182 183 185 186 187 188 189 191 195 198 199"
).split()
# (occupation, employers, median annual income in CNY); in an employer "{city}"
# is the branch's city and "{brand}" a made-up two-character trade name.
OCCUPATIONS: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("企业职员", ("{city}{brand}科技有限公司", "{city}{brand}贸易有限公司"), 120_000),
    ("工程师", ("{city}{brand}智能科技有限公司", "{city}{brand}电气股份有限公司"), 220_000),
    ("教师", ("{city}市第二中学", "{city}市实验小学", "{city}职业技术学院"), 150_000),
    ("医生", ("{city}市第一人民医院", "{city}市中医院", "{city}市妇幼保健院"), 260_000),
    ("护士", ("{city}市第一人民医院", "{city}市中医院"), 110_000),
    ("公务员", ("{city}市市场监督管理局", "{city}市人力资源和社会保障局"), 180_000),
    ("个体工商户", ("",), 160_000),
    ("企业主", ("{city}{brand}纺织有限公司", "{city}{brand}五金制品有限公司"), 600_000),
    ("会计", ("{city}{brand}会计师事务所", "{city}{brand}实业有限公司"), 130_000),
    ("律师", ("浙江{brand}律师事务所",), 350_000),
    ("销售经理", ("{city}{brand}汽车销售服务有限公司", "{city}{brand}医药有限公司"), 200_000),
    ("程序员", ("{city}{brand}网络科技有限公司", "{city}{brand}信息技术有限公司"), 300_000),
    ("设计师", ("{city}{brand}建筑设计院有限公司", "{city}{brand}文化创意有限公司"), 180_000),
    ("退休", ("",), 60_000),
    ("自由职业", ("",), 90_000),
)
OCCUPATION_WEIGHTS = (16, 8, 6, 4, 4, 5, 9, 5, 5, 2, 6, 6, 3, 12, 5)
COMPANY_WORDS = "华宏鑫盛泰达恒通瑞丰锦汇永昌嘉禾天元金诚东方新越"
COMPANY_INDUSTRIES = (
    "纺织印染有限公司",
    "机械制造有限公司",
    "建材贸易有限公司",
    "电子科技有限公司",
    "物流有限公司",
    "食品有限公司",
    "服饰有限公司",
    "五金工具有限公司",
)
SOURCE_CHANNELS = (
    ("branch_walk_in", 30),
    ("referral", 14),
    ("phone_marketing", 6),
    ("wechat", 10),
    ("mobile_banking", 14),
    ("campaign", 6),
    ("payroll", 12),
    ("import", 6),
    ("other", 2),
)
CUSTOMER_NOTES = (
    "客户偏好电话联系，工作日白天不便接听。",
    "家中有老人需要照顾，关注养老规划。",
    "子女明年出国留学，可能有换汇需求。",
    "对理财收益较敏感，每次到期都会比较他行利率。",
    "VIP客户，来网点请优先安排贵宾室。",
    "经营资金周转需求较多，关注经营贷产品。",
)


@dataclass(frozen=True)
class ProductSpec:
    code: str
    name: str
    category: str
    risk_level: str
    rate: str | None
    term_months: int
    min_amount: int
    issuer: str
    description: str
    on_sale: bool = True


# fmt: off
PRODUCTS: tuple[ProductSpec, ...] = (
    ProductSpec("DEP-CUR", "活期储蓄", "deposit", "R1", "0.1500", 0, 0, BANK_NAME,
                "随存随取，按季结息。"),
    ProductSpec("DEP-TD-3M", "整存整取三个月", "deposit", "R1", "0.8500", 3, 50, BANK_NAME,
                "定期存款，到期自动转存。"),
    ProductSpec("DEP-TD-1Y", "整存整取一年", "deposit", "R1", "1.2500", 12, 50, BANK_NAME,
                "定期存款，到期自动转存。"),
    ProductSpec("DEP-TD-3Y", "整存整取三年", "deposit", "R1", "1.7500", 36, 50, BANK_NAME,
                "定期存款，到期自动转存。"),
    ProductSpec("DEP-CD-3Y", "大额存单（三年期）", "deposit", "R1", "1.9000", 36, 200_000,
                BANK_NAME, "个人大额存单，20万元起存，可转让。"),
    ProductSpec("WM-AX-90", "安鑫理财90天", "wealth", "R2", "2.3000", 3, 10_000,
                "示范理财有限责任公司", "固定收益类，业绩比较基准不代表实际收益。"),
    ProductSpec("WM-WY-365", "稳盈一年期固收理财", "wealth", "R2", "2.6500", 12, 10_000,
                "示范理财有限责任公司", "固定收益类，封闭期一年。"),
    ProductSpec("WM-ZX-18M", "臻享混合类理财", "wealth", "R3", "3.2000", 18, 50_000,
                "示范理财有限责任公司", "混合类，投资债券与权益资产。"),
    ProductSpec("WM-PB-12M", "私行尊享理财", "wealth", "R3", "3.6000", 12, 1_000_000,
                "示范理财有限责任公司", "私人银行客户专属。"),
    ProductSpec("FD-MM", "现金宝货币基金", "fund", "R1", "1.7000", 0, 1,
                "华信基金管理有限公司", "货币市场基金，T+0 快速赎回。"),
    ProductSpec("FD-BOND-A", "华信稳健债券A", "fund", "R2", None, 0, 10,
                "华信基金管理有限公司", "债券型基金。"),
    ProductSpec("FD-MIX", "中诚价值精选混合", "fund", "R3", None, 0, 10,
                "中诚基金管理有限公司", "偏股混合型基金，适合定投。"),
    ProductSpec("FD-IDX300", "博远沪深300指数增强", "fund", "R4", None, 0, 10,
                "博远基金管理有限公司", "指数增强型基金。"),
    ProductSpec("LN-MORT", "个人住房按揭贷款", "loan", "R1", "3.1000", 360, 100_000, BANK_NAME,
                "首套房贷款，利率按 LPR 加减点。"),
    ProductSpec("LN-CONS", "个人信用消费贷款", "loan", "R2", "3.6000", 36, 10_000, BANK_NAME,
                "纯信用，线上申请，额度最高50万元。"),
    ProductSpec("LN-BIZ", "个人经营贷款", "loan", "R2", "3.8500", 36, 50_000, BANK_NAME,
                "小微企业主及个体工商户经营周转。"),
    ProductSpec("LN-CAR", "汽车消费贷款", "loan", "R2", "3.9000", 60, 30_000, BANK_NAME,
                "购车分期，最长5年。"),
    ProductSpec("INS-ANNUITY", "金福年金保险", "insurance", "R2", None, 120, 10_000,
                "安康人寿保险股份有限公司", "代理销售，年金型保险。"),
    ProductSpec("INS-CI", "安心重疾保险", "insurance", "R1", None, 240, 3_000,
                "安康人寿保险股份有限公司", "代理销售，重大疾病保险。"),
    ProductSpec("WM-OLD-2022", "稳盈2022年第8期", "wealth", "R2", "3.8000", 12, 10_000,
                "示范理财有限责任公司", "已到期停售。", on_sale=False),
)
# fmt: on


@dataclass
class _Customer:
    """What the generator remembers about a customer, beyond its payload."""

    payload: dict[str, Any]
    rm: str
    branch: str
    since: dt.datetime
    holdings: list[dict[str, Any]]
    id: int = 0

    @property
    def name(self) -> str:
        return str(self.payload["name"])

    @property
    def individual(self) -> bool:
        return bool(self.payload["customer_type"] == "individual")

    @property
    def active(self) -> bool:
        return bool(self.payload["status"] != "closed")


def _at(day: dt.date, hour: int, minute: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), CST)


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def _money(value: float, step: int = 1) -> str:
    """A money string, rounded down to ``step`` yuan (cents when step is 0)."""
    if step == 0:
        return str(Decimal(str(round(value, 2))).quantize(Decimal("0.01")))
    return f"{int(value // step * step)}.00"


def tier_for(aum: Decimal) -> str:
    """The customer tier by assets under management (DOMAIN.md's table)."""
    if aum > 8_000_000:
        return "private"
    if aum >= 1_000_000:
        return "high"
    if aum >= 200_000:
        return "mid"
    return "mass"


_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def make_credit_code(area: str, organisation: str) -> str:
    """A unified social credit code (GB 32100-2015) with valid check characters.

    ``organisation`` is the 8-digit body of the organisation code; its GB
    11714 check character and the code's final check character are computed.
    """
    total = sum(int(c) * w for c, w in zip(organisation, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    org = organisation + ("0" if check == 11 else "X" if check == 10 else str(check))
    body = "91" + area + org  # 9: registered by market regulation; 1: an enterprise
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(body, _USCC_WEIGHTS, strict=True))
    return body + _USCC_CHARS[(31 - total % 31) % 31]


class _Generator:
    def __init__(
        self,
        conn: sa.Connection,
        schema: Schema,
        rng: random.Random,
        today: dt.date,
        now: dt.datetime,
        departments: dict[str, int],
        staff: dict[str, int],
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.rng = rng
        self.today = today
        self.now = now
        self.dept = departments
        self.staff = staff
        self.stores: dict[tuple[str, str], RecordStore] = {}
        self.counts: dict[str, int] = {}
        self.products: dict[str, int] = {}
        self.rms_by_branch: dict[str, list[str]] = {}
        for s in STAFF:
            if s.username.startswith("rm_"):
                self.rms_by_branch.setdefault(s.department, []).append(s.username)
        self.used_ids: set[str] = set()
        self.used_phones: set[str] = set()

    # -- helpers ---------------------------------------------------------------

    def create_all(self, form: str, items: Sequence[tuple[str, dict[str, Any]]]) -> list[int]:
        """Create records, each as the staff member named with it: their ids, in order.

        One ``create_many`` per staff member, so a few statements per form
        however many records there are; the staff member is the records'
        creator and owner, their department the records' department.
        """
        ids = [0] * len(items)
        by_who: dict[str, list[int]] = {}
        for i, (who, _) in enumerate(items):
            by_who.setdefault(who, []).append(i)
        for who, indexes in by_who.items():
            member = STAFF_BY_USERNAME[who]
            actor = Actor(user_id=self.staff[who], dept_id=self.dept[member.department])
            store = RecordStore(
                self.conn, self.schema.form(form), actor=actor, clock=lambda: self.now
            )
            records = store.create_many([items[i][1] for i in indexes])
            for i, record in zip(indexes, records, strict=True):
                ids[i] = int(record["id"])
        self.counts[form] = self.counts.get(form, 0) + len(items)
        return ids

    def pick(self, options: Sequence[tuple[T, float]]) -> T:
        values = [o[0] for o in options]
        weights = [o[1] for o in options]
        return self.rng.choices(values, weights)[0]

    def moment(self, earliest: dt.datetime, latest: dt.datetime | None = None) -> dt.datetime:
        """A working-hours moment between two times (both included, roughly)."""
        latest = min(latest or self.now, self.now)
        if earliest >= latest:
            return latest
        span = (latest.date() - earliest.date()).days
        for _ in range(10):
            day = earliest.date() + dt.timedelta(days=self.rng.randint(0, span))
            if day.weekday() >= 5 and self.rng.random() < 0.8:
                continue  # fewer records at weekends
            moment = _at(day, self.rng.randint(8, 17), self.rng.randrange(60))
            if earliest <= moment <= latest:
                return moment
        return latest

    def days_ago(self, low: int, high: int) -> dt.datetime:
        return self.moment(self.now - dt.timedelta(days=high), self.now - dt.timedelta(days=low))

    def phone(self) -> str:
        while True:
            number = self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    def person_name(self, gender: str) -> str:
        surname = self.rng.choices(SURNAMES, SURNAME_WEIGHTS)[0]
        chars = MALE_CHARS if gender == "male" else FEMALE_CHARS
        given = "".join(self.rng.choice(chars) for _ in range(self.rng.choice((1, 2, 2, 2))))
        return surname + given

    def id_number(self, area: str, birth: dt.date, gender: str) -> str:
        while True:
            sequence = self.rng.randrange(0, 999, 2) + (1 if gender == "male" else 0)
            number = make_cn_id(area, birth, sequence)  # the 17th digit is odd for men
            if number not in self.used_ids:
                self.used_ids.add(number)
                return number

    def address(self, branch: Department) -> str:
        street = self.rng.choice(branch.streets)
        number = self.rng.randint(1, 399)
        if self.rng.random() < 0.75:
            return (
                f"{branch.place}{street}{number}号{self.rng.randint(1, 30)}幢"
                f"{self.rng.randint(1, 25)}{self.rng.randint(1, 4):02d}室"
            )
        return f"{branch.place}{street}{number}号"

    # -- the run ---------------------------------------------------------------

    def run(self, n_customers: int) -> None:
        self.create_products()
        customers = [self.make_customer(i) for i in range(n_customers)]
        customers.sort(key=lambda c: c.since)  # ids in the order customers came to the bank
        # Referred customers link to a customer who came earlier: created second.
        first: list[_Customer] = []
        referred: list[tuple[_Customer, _Customer]] = []
        for c in customers:
            if c.payload["source_channel"] == "referral" and first:
                referred.append((c, self.rng.choice(first)))
            else:
                first.append(c)
        ids = self.create_all("customer", [(c.rm, c.payload) for c in first])
        for c, cid in zip(first, ids, strict=True):
            c.id = cid
        for c, referrer in referred:
            c.payload["referred_by"] = referrer.id
            c.payload["note"] = c.payload.get("note") or f"由老客户{referrer.name}推荐。"
        ids = self.create_all("customer", [(c.rm, c.payload) for c, _ in referred])
        for (c, _), cid in zip(referred, ids, strict=True):
            c.id = cid
        holdings = sorted(
            ((c, h) for c in customers for h in c.holdings), key=lambda ch: ch[1]["start_date"]
        )
        self.create_all("holding", [(c.rm, {**h, "customer": c.id}) for c, h in holdings])
        self.create_interactions(customers)
        leads = self.create_leads(customers)
        self.create_loan_applications(customers, leads)
        self.create_complaints(customers)
        self.create_campaigns(customers)

    def create_products(self) -> None:
        payloads = []
        for p in PRODUCTS:
            start = self.today - dt.timedelta(days=self.rng.randint(200, 1500))
            payload: dict[str, Any] = {
                "code": p.code,
                "name": p.name,
                "category": p.category,
                "risk_level": p.risk_level,
                "currency": "CNY",
                "term_months": p.term_months,
                "min_amount": f"{p.min_amount}.00",
                "issuer": p.issuer,
                "on_sale": p.on_sale,
                "sale_start_on": start.isoformat(),
                "description": p.description,
            }
            if p.rate is not None:
                payload["rate"] = p.rate
            if not p.on_sale:
                payload["sale_end_on"] = _add_months(start, 3).isoformat()
            payloads.append(("hq_zhao", payload))
        ids = self.create_all("product", payloads)
        self.products = {p.code: pid for p, pid in zip(PRODUCTS, ids, strict=True)}

    # -- customers and their holdings ----------------------------------------

    def make_customer(self, i: int) -> _Customer:
        rng = self.rng
        branch = rng.choice(SUB_BRANCHES)
        rm = rng.choice(self.rms_by_branch[branch.code])
        corporate = rng.random() < 0.08
        source = self.pick(SOURCE_CHANNELS)
        payload: dict[str, Any] = {
            "customer_no": f"C{8_800_000_000 + i * 7 + rng.randrange(7):010d}",
            "customer_type": "corporate" if corporate else "individual",
            "branch": self.dept[branch.code],
            "owner_rm": self.staff[rm],
            "source_channel": source,
            "phone": self.phone(),
            "address": self.address(branch),
            "postal_code": branch.postal_code,
            "consent_data_processing": rng.random() < 0.97,
            "consent_marketing": rng.random() < 0.6,
            "consent_sms": rng.random() < 0.7,
        }
        if corporate:
            since, target = self.corporate_details(payload, branch)
        else:
            since, target = self.individual_details(payload, branch, source)
        status = self.pick((("active", 90), ("dormant", 8), ("closed", 2)))
        payload["status"] = status
        if status != "active":
            target = min(target, rng.uniform(0, 3_000))
        holdings = self.make_holdings(payload, since, target, closed=status == "closed")
        aum = sum(
            (
                Decimal(h["amount"])
                for h in holdings
                if h["kind"] != "loan" and h["status"] == "active"
            ),
            Decimal("0.00"),
        )
        payload["aum"] = str(aum)
        if not corporate:
            payload["tier"] = tier_for(aum)
        payload["tags"] = self.tags(payload, holdings)
        if rng.random() < 0.15:
            payload["note"] = rng.choice(CUSTOMER_NOTES)
        return _Customer(payload, rm, branch.code, since, holdings)

    def individual_details(
        self, payload: dict[str, Any], branch: Department, source: str
    ) -> tuple[dt.datetime, float]:
        rng = self.rng
        gender = rng.choice(("male", "female"))
        age = int(
            self.pick(
                (
                    (rng.randint(20, 29), 18),
                    (rng.randint(30, 44), 32),
                    (rng.randint(45, 59), 28),
                    (rng.randint(60, 82), 22),
                )
            )
        )
        birth = self.today - dt.timedelta(days=int(age * 365.25) + rng.randrange(365))
        area = branch.area if rng.random() < 0.72 else rng.choice(OTHER_AREAS)
        assert area is not None
        occupation, employers, median = self.pick(
            tuple(zip(OCCUPATIONS, OCCUPATION_WEIGHTS, strict=True))
        )
        if age >= 62 and rng.random() < 0.8:
            occupation, employers, median = OCCUPATIONS[13]  # 退休
        married = age >= 26 and rng.random() < min(0.9, (age - 22) / 12)
        children = rng.choice((0, 1, 1, 1, 2, 2, 3)) if married and age >= 27 else 0
        payload.update(
            name=self.person_name(gender),
            id_number=self.id_number(area, birth, gender),
            gender=gender,
            birthday=birth.isoformat(),
            occupation=occupation,
            annual_income=_money(median * rng.lognormvariate(0, 0.45), 1000),
            marital_status=(
                "married"
                if married
                else "single"
                if age < 40 or rng.random() < 0.5
                else self.pick((("divorced", 2), ("widowed", 1)))
            ),
            family_size=1 + (1 if married else 0) + children + (1 if rng.random() < 0.25 else 0),
            children_count=children,
            risk_rating=self.pick((("R1", 18), ("R2", 34), ("R3", 30), ("R4", 13), ("R5", 5))),
        )
        employer = rng.choice(employers)
        if employer:
            brand = "".join(rng.sample(COMPANY_WORDS, 2))
            payload["employer"] = employer.format(city=branch.place[3:5], brand=brand)
        elif source == "payroll":
            payload["source_channel"] = "branch_walk_in"  # payroll needs an employer
        if rng.random() < 0.45:
            payload["email"] = (
                f"{rng.randrange(10_000_000, 3_999_999_999)}@qq.com"
                if rng.random() < 0.6
                else f"{payload['phone']}@139.com"
            )
        if married and rng.random() < 0.3:
            payload["family_notes"] = rng.choice(
                (
                    "配偶在本行代发工资。",
                    "子女在读高中，关注教育金储备。",
                    "父母同住，关注健康险。",
                    "家庭计划两年内换房。",
                )
            )
        adult = dt.datetime.combine(birth, dt.time(), CST) + dt.timedelta(days=int(18 * 365.25))
        since = self.moment(max(self.now - dt.timedelta(days=6 * 365), adult))
        assessed = self.moment(max(since, self.now - dt.timedelta(days=730)))
        payload["risk_assessed_on"] = assessed.date().isoformat()
        target = self.pick(
            (
                (rng.lognormvariate(10.3, 1.0), 62),
                (rng.uniform(2e5, 1e6), 25),
                (rng.uniform(1e6, 8e6), 10),
                (rng.uniform(8.1e6, 3e7), 3),
            )
        )
        return since, target

    def corporate_details(
        self, payload: dict[str, Any], branch: Department
    ) -> tuple[dt.datetime, float]:
        rng = self.rng
        city = branch.place[3:5]
        assert branch.area is not None
        payload.update(
            name=city + "".join(rng.sample(COMPANY_WORDS, 2)) + rng.choice(COMPANY_INDUSTRIES),
            credit_code=make_credit_code(branch.area, f"{rng.randrange(10**8):08d}"),
            email=f"finance{rng.randrange(100, 999)}@{rng.choice(('163.com', 'qq.com'))}",
        )
        since = self.moment(self.now - dt.timedelta(days=8 * 365))
        return since, rng.lognormvariate(13.5, 1.1)

    def make_holdings(
        self, payload: dict[str, Any], since: dt.datetime, target: float, *, closed: bool
    ) -> list[dict[str, Any]]:
        rng = self.rng
        balance_date = (self.today - dt.timedelta(days=1)).isoformat()
        shares: list[tuple[str, float]] = [("DEP-CUR", rng.uniform(0.05, 0.4))]
        if target > 30_000:
            shares.append(
                (rng.choice(("DEP-TD-1Y", "DEP-TD-3Y", "DEP-TD-3M")), rng.uniform(0.2, 1))
            )
        if target > 200_000 and rng.random() < 0.5:
            shares.append(("DEP-CD-3Y", rng.uniform(0.3, 1)))
        if target > 50_000 and rng.random() < 0.55:
            shares.append((rng.choice(("WM-AX-90", "WM-WY-365", "WM-ZX-18M")), rng.uniform(0.2, 1)))
        if target > 1_000_000 and rng.random() < 0.7:
            shares.append(("WM-PB-12M", rng.uniform(0.5, 1.5)))
        if target > 10_000 and rng.random() < 0.35:
            shares.append(
                (rng.choice(("FD-MM", "FD-BOND-A", "FD-MIX", "FD-IDX300")), rng.uniform(0.05, 0.4))
            )
        if payload["customer_type"] == "individual" and target > 80_000 and rng.random() < 0.2:
            shares.append((rng.choice(("INS-ANNUITY", "INS-CI")), rng.uniform(0.05, 0.3)))
        total = sum(s for _, s in shares)
        holdings = []
        for code, share in shares:
            holdings.append(self.holding(code, target * share / total, since, balance_date, closed))
        if payload["customer_type"] == "individual" and not closed and rng.random() < 0.2:
            code = self.pick((("LN-MORT", 5), ("LN-CONS", 3), ("LN-CAR", 2), ("LN-BIZ", 2)))
            amount = {"LN-MORT": 1_200_000, "LN-CONS": 80_000, "LN-CAR": 150_000, "LN-BIZ": 500_000}
            holdings.append(
                self.holding(code, amount[code] * rng.uniform(0.2, 1), since, balance_date, False)
            )
        return holdings

    def holding(
        self, code: str, amount: float, since: dt.datetime, balance_date: str, closed: bool
    ) -> dict[str, Any]:
        rng = self.rng
        spec = next(p for p in PRODUCTS if p.code == code)
        kind = spec.category
        prefix = {
            "deposit": "62305817",
            "wealth": "LC",
            "fund": "JJ",
            "loan": "DK",
            "insurance": "BD",
        }
        term = spec.term_months
        earliest = since.date()
        if term:
            earliest = max(earliest, _add_months(self.today, -term))  # most still running
        start = self.moment(_at(earliest, 9, 0)).date()
        step = 0 if code in ("DEP-CUR", "FD-MM") else 1000
        value = max(amount, float(spec.min_amount), 1.0)
        holding: dict[str, Any] = {
            "product": self.products[code],
            "kind": kind,
            "account_no": prefix[kind] + f"{rng.randrange(10**11):011d}",
            "amount": _money(value, step if value >= 1000 else 0),
            "currency": "CNY",
            "balance_date": balance_date,
            "start_date": start.isoformat(),
            "status": "closed" if closed else "active",
            "source_system": {
                "deposit": "core_banking",
                "wealth": "wealth",
                "fund": "fund",
                "loan": "credit",
                "insurance": "insurance",
            }[kind],
        }
        if term and code != "DEP-CUR":
            maturity = _add_months(start, term)
            holding["maturity_date"] = maturity.isoformat()
            if maturity <= self.today and not closed:
                holding["status"] = "matured"
        return holding

    def tags(self, payload: dict[str, Any], holdings: list[dict[str, Any]]) -> list[str]:
        rng = self.rng
        tags = []
        if payload["status"] == "dormant":
            tags.append("dormant_warning")
        birthday = payload.get("birthday")
        if birthday and (self.today - dt.date.fromisoformat(birthday)).days < 30 * 365:
            tags.append("young")
        if payload["source_channel"] == "payroll":
            tags.append("payroll")
        if any(h["kind"] == "fund" for h in holdings) and rng.random() < 0.5:
            tags.append("fund_auto_invest")
        if payload["status"] == "active" and payload["customer_type"] == "individual":
            if rng.random() < 0.3:
                tags.append("credit_card_active")
            if rng.random() < 0.05:
                tags.append("churn_risk")
            if rng.random() < 0.06:
                tags.append("fx_wealth_intent")
            if rng.random() < 0.03:
                tags.append("high_frequency_trader")
        return tags

    # -- activity --------------------------------------------------------------

    def create_interactions(self, customers: list[_Customer]) -> None:
        rng = self.rng
        planned: list[tuple[dt.datetime, _Customer, dict[str, Any]]] = []
        for c in customers:
            if not c.active:
                continue
            for _ in range(rng.choices((0, 1, 2, 3), (30, 35, 22, 13))[0]):
                at = self.moment(max(c.since, self.now - dt.timedelta(days=180)))
                planned.append((at, c, self.interaction(c, at)))
        planned.sort(key=lambda p: p[0])
        self.create_all("interaction", [(c.rm, {**p, "customer": c.id}) for _, c, p in planned])

    def interaction(self, c: _Customer, at: dt.datetime) -> dict[str, Any]:
        rng = self.rng
        branch = next(d for d in SUB_BRANCHES if d.code == c.branch)
        held = [h["product"] for h in c.holdings if h.get("maturity_date")]
        names = {self.products[p.code]: p.name for p in PRODUCTS}
        product = names[rng.choice(held)] if held else rng.choice(PRODUCTS[1:9]).name
        attitude, sentiment = rng.choice(
            (
                ("会考虑", "neutral"),
                ("比较感兴趣", "positive"),
                ("暂时不需要", "negative"),
                ("希望下周再详细沟通", "neutral"),
                ("当场同意续作", "positive"),
            )
        )
        channel = self.pick(
            (("visit", 25), ("call", 35), ("wechat", 25), ("note", 12), ("complaint", 3))
        )
        subject, summary, direction = {
            "visit": (
                "网点到访",
                f"客户到{branch.name}办理业务，介绍了{product}，客户{attitude}。",
                "inbound",
            ),
            "call": (
                "到期及续作提醒",
                f"电话联系客户，提醒{product}即将到期，客户{attitude}。",
                "outbound",
            ),
            "wechat": (
                "企业微信咨询",
                f"客户通过企业微信咨询{product}的收益和期限，已发送产品说明书，客户{attitude}。",
                "inbound",
            ),
            "note": (
                "客户经理备注",
                rng.choice(
                    (
                        "客户近期有购房计划，可关注按揭贷款需求。",
                        "客户孩子即将上大学，关注教育金规划。",
                        "客户企业经营稳定，资金有季节性周转需求。",
                        "客户关注养老规划，推荐年金保险。",
                    )
                ),
                "outbound",
            ),
            "complaint": (
                "客户反映问题",
                rng.choice(
                    (
                        "客户反映手机银行转账时多次提示超时，已记录并反馈总行。",
                        "客户对柜台排队时间较长不满，已致歉并介绍线上预约。",
                    )
                ),
                "inbound",
            ),
        }[channel]
        payload: dict[str, Any] = {
            "channel": channel,
            "direction": direction,
            "occurred_at": at.isoformat(),
            "handled_by": self.staff[c.rm],
            "subject": subject,
            "summary": summary,
            "sentiment": {"complaint": "negative", "note": "neutral"}.get(channel, sentiment),
        }
        if rng.random() < 0.4:
            payload["follow_up_on"] = (
                at.date() + dt.timedelta(days=rng.randint(1, 14))
            ).isoformat()
        return payload

    def create_leads(
        self, customers: list[_Customer]
    ) -> list[tuple[int, _Customer, dict[str, Any]]]:
        rng = self.rng
        kinds = (
            ("大额存单续作", "DEP-CD-3Y", 200_000, 2_000_000),
            ("基金定投开户", "FD-MIX", 12_000, 60_000),
            ("稳健理财配置", "WM-WY-365", 50_000, 500_000),
            ("个人住房按揭贷款", "LN-MORT", 500_000, 3_000_000),
            ("个人经营贷款需求", "LN-BIZ", 200_000, 2_000_000),
            ("汽车消费贷款", "LN-CAR", 50_000, 300_000),
            ("家庭保障规划", "INS-CI", 10_000, 100_000),
        )
        probability = {
            "new": 10,
            "contacted": 20,
            "needs_analysis": 35,
            "proposal": 50,
            "signing": 80,
            "won": 100,
            "lost": 0,
        }
        active = [c for c in customers if c.active and c.individual]
        planned = []
        for _ in range(len(customers) // 4 if active else 0):
            c = rng.choice(active)
            title, code, low, high = rng.choice(kinds)
            stage = self.pick(
                (
                    ("new", 22),
                    ("contacted", 18),
                    ("needs_analysis", 15),
                    ("proposal", 12),
                    ("signing", 8),
                    ("won", 15),
                    ("lost", 10),
                )
            )
            at = self.moment(max(c.since, self.now - dt.timedelta(days=150)))
            payload: dict[str, Any] = {
                "title": f"{c.name} · {title}",
                "product": self.products[code],
                "stage": stage,
                "source_channel": self.pick(
                    (
                        ("branch_walk_in", 3),
                        ("referral", 2),
                        ("phone_marketing", 2),
                        ("wechat", 2),
                        ("campaign", 2),
                    )
                ),
                "expected_amount": _money(rng.uniform(low, high), 1000),
                "probability": probability[stage],
                "owner_rm": self.staff[c.rm],
            }
            if stage in ("won", "lost"):
                payload["expected_close_on"] = self.moment(at).date().isoformat()
            else:
                payload["expected_close_on"] = (
                    self.today + dt.timedelta(days=rng.randint(3, 90))
                ).isoformat()
            if stage == "lost":
                payload["lost_reason"] = rng.choice(
                    ("收益率低于他行同类产品", "客户资金另有安排", "审批条件不满足", "客户暂不考虑")
                )
            planned.append((at, c, payload))
        planned.sort(key=lambda p: p[0])
        ids = self.create_all("lead", [(c.rm, {**p, "customer": c.id}) for _, c, p in planned])
        return [(lead_id, c, p) for lead_id, (_, c, p) in zip(ids, planned, strict=True)]

    def create_loan_applications(
        self, customers: list[_Customer], leads: list[tuple[int, _Customer, dict[str, Any]]]
    ) -> None:
        rng = self.rng
        loan_products = {self.products[c]: c for c in ("LN-MORT", "LN-BIZ", "LN-CAR", "LN-CONS")}
        from_leads = [
            (lead_id, c, loan_products[p["product"]])
            for lead_id, c, p in leads
            if p["product"] in loan_products and p["stage"] in ("signing", "won", "proposal")
        ]
        active = [c for c in customers if c.active and c.individual]
        planned = []
        lead_id: int | None
        for n in range(len(customers) // 8 if active else 0):
            if n < len(from_leads):
                lead_id, c, code = from_leads[n]
            else:
                lead_id, c = None, rng.choice(active)
                code = self.pick((("LN-CONS", 4), ("LN-MORT", 3), ("LN-BIZ", 3), ("LN-CAR", 2)))
            planned.append((self.loan_application(c, code), lead_id, c))
        planned.sort(key=lambda p: p[0][0])
        items = []
        for seq, ((at, payload), lead_id, c) in enumerate(planned, start=1):
            payload["application_no"] = f"LA-{at:%Y%m%d}-{seq:04d}"
            if lead_id is not None:
                payload["lead"] = lead_id
            items.append((c.rm, {**payload, "customer": c.id}))
        self.create_all("loan_application", items)

    def loan_application(self, c: _Customer, code: str) -> tuple[dt.datetime, dict[str, Any]]:
        rng = self.rng
        purpose, guarantee, low, high, terms = {
            "LN-MORT": ("home", "mortgage", 300_000, 3_000_000, (120, 240, 300, 360)),
            "LN-BIZ": (
                "business",
                self.pick((("guarantee", 2), ("mortgage", 2), ("credit", 1))),
                100_000,
                2_000_000,
                (12, 24, 36),
            ),
            "LN-CAR": ("car", "pledge", 50_000, 300_000, (24, 36, 60)),
            "LN-CONS": (
                self.pick((("consumption", 4), ("education", 1), ("other", 1))),
                "credit",
                10_000,
                300_000,
                (12, 24, 36),
            ),
        }[code]
        status = self.pick(
            (
                ("draft", 8),
                ("submitted", 12),
                ("pre_review", 12),
                ("bank_review", 15),
                ("approved", 15),
                ("rejected", 10),
                ("disbursed", 23),
                ("withdrawn", 5),
            )
        )
        at = self.moment(max(c.since, self.now - dt.timedelta(days=90)))
        amount = rng.uniform(low, high)
        payload: dict[str, Any] = {
            "product": self.products[code],
            "amount": _money(amount, 10_000 if amount > 100_000 else 1000),
            "term_months": rng.choice(terms),
            "purpose": purpose,
            "guarantee_type": guarantee,
            "repayment_method": "equal_installment"
            if purpose in ("home", "car")
            else self.pick(
                (("equal_installment", 2), ("interest_first", 2), ("equal_principal", 1))
            ),
            "status": status,
            "owner_rm": self.staff[c.rm],
        }
        if purpose in ("business", "other", "consumption"):
            payload["purpose_detail"] = {
                "business": "店铺进货及经营周转",
                "other": "家庭临时资金需求",
                "consumption": rng.choice(("家庭装修", "购买家电家具", "婚庆消费", "旅游消费")),
            }[purpose]
        if status != "draft":
            payload["applied_at"] = at.isoformat()
        if status in ("approved", "disbursed"):
            payload["approved_amount"] = _money(amount * rng.choice((0.8, 0.9, 1.0)), 1000)
        kinds = ["id_card", "income_proof", "bank_statement"]
        if c.payload.get("marital_status") == "married":
            kinds.append("marriage_certificate")
        if purpose == "home" or guarantee == "mortgage":
            kinds += ["household_register", "property_certificate"]
        if purpose == "business":
            kinds += ["business_license", "tax_record"]
        complete = status not in ("draft", "submitted", "withdrawn")
        documents = []
        for kind in kinds:
            received = complete or rng.random() < 0.6
            row: dict[str, Any] = {"kind": kind, "received": received}
            if received:
                row["received_on"] = self.moment(at, at + dt.timedelta(days=20)).date().isoformat()
            elif kind == "bank_statement":
                row["note"] = "待补充近6个月银行流水"
            documents.append(row)
        payload["documents"] = documents
        return at, payload

    def create_complaints(self, customers: list[_Customer]) -> None:
        rng = self.rng
        topics = {
            "service": "客户反映网点柜员办理业务时态度生硬，等候时间超过一小时。",
            "fees": "客户对账户管理费和短信通知费的扣收有异议，要求退还。",
            "mis_selling": "客户称购买理财产品时未被充分告知风险，现产品净值下跌要求赎回。",
            "card": "客户银行卡在境外被盗刷两笔，要求核查并挂失补卡。",
            "loan": "客户反映贷款审批时间过长，且被要求提供的材料前后不一致。",
            "wealth": "客户对理财产品到期收益低于业绩比较基准不满。",
            "system": "客户手机银行登录后频繁闪退，无法完成转账。",
            "privacy": "客户接到自称本行员工的营销电话，质疑个人信息被泄露。",
            "other": "客户建议网点增加周末营业时间。",
        }
        sla = {"critical": 1, "high": 3, "medium": 7, "low": 15}  # days, by severity
        active = [c for c in customers if c.active]
        planned = []
        for _ in range(len(customers) // 12 if active else 0):
            c = rng.choice(active)
            category = self.pick(
                (
                    ("service", 25),
                    ("fees", 15),
                    ("mis_selling", 8),
                    ("card", 10),
                    ("loan", 10),
                    ("wealth", 10),
                    ("system", 12),
                    ("privacy", 5),
                    ("other", 5),
                )
            )
            severity = self.pick((("low", 45), ("medium", 30), ("high", 18), ("critical", 7)))
            channel = self.pick(
                (
                    ("branch", 30),
                    ("hotline", 35),
                    ("wechat", 12),
                    ("mobile_banking", 10),
                    ("email", 4),
                    ("letter", 2),
                    ("regulator", 7),
                )
            )
            at = self.moment(max(c.since, self.now - dt.timedelta(days=60)))
            deadline = at + dt.timedelta(days=sla[severity])
            to_hq = category in ("mis_selling", "privacy", "system") or channel == "regulator"
            payload: dict[str, Any] = {
                "channel": channel,
                "category": category,
                "description": topics[category],
                "severity": severity,
                "received_at": at.isoformat(),
                "sla_deadline": deadline.isoformat(),
                "responsible_department": self.dept["HQ-CONSUMER" if to_hq else c.branch],
                "handler": self.staff["hq_sun" if to_hq else c.rm],
            }
            if deadline < self.now or rng.random() < 0.3:
                late = deadline < self.now and rng.random() < 0.15
                if late and rng.random() < 0.5:
                    payload["status"] = "escalated"  # past its deadline, still open
                else:
                    latest = deadline + dt.timedelta(days=3) if late else deadline
                    resolved = self.moment(at + dt.timedelta(hours=2), latest)
                    payload.update(
                        status="closed",
                        resolved_at=resolved.isoformat(),
                        resolution=rng.choice(
                            (
                                "已向客户致歉并说明情况，客户表示理解。",
                                "经核查属实，已退还相关费用。",
                                "已协调相关部门处理完毕，并电话回访客户。",
                            )
                        ),
                        satisfaction=self.pick(
                            (
                                ("very_satisfied", 3),
                                ("satisfied", 5),
                                ("neutral", 2),
                                ("dissatisfied", 1),
                            )
                        ),
                    )
            else:
                payload["status"] = self.pick(
                    (
                        ("registered", 2),
                        ("dispatched", 3),
                        ("in_progress", 4),
                        ("awaiting_confirmation", 2),
                    )
                )
            planned.append((at, c, payload))
        planned.sort(key=lambda p: p[0])
        items = []
        for seq, (at, c, payload) in enumerate(planned, start=1):
            payload["ticket_no"] = f"TS-{at:%Y%m%d}-{seq:03d}"
            who = "hq_sun" if payload["handler"] == self.staff["hq_sun"] else c.rm
            items.append((who, {**payload, "customer": c.id}))
        self.create_all("complaint", items)

    def create_campaigns(self, customers: list[_Customer]) -> None:
        rng = self.rng
        year = self.today.year
        campaigns = (
            (
                "01",
                "大额存单专享推介",
                "product_promotion",
                ["sms", "wechat", "branch"],
                "DEP-CD-3Y",
                -75,
                -15,
                "finished",
                "AUM 20万元以上、近一年有定期到期的个人客户",
            ),
            (
                "02",
                "到期客户续作挽留",
                "maturity_retention",
                ["phone", "wechat"],
                "WM-WY-365",
                -30,
                30,
                "running",
                "未来60天内存款或理财到期的客户",
            ),
            (
                "03",
                "客户生日关怀",
                "birthday_care",
                ["sms", "wechat"],
                None,
                -90,
                275,
                "running",
                "当月生日的个人客户",
            ),
            (
                "04",
                "睡眠户激活计划",
                "reactivation",
                ["phone", "sms"],
                "FD-MM",
                10,
                70,
                "planned",
                "连续3个月无主动交易的个人客户",
            ),
        )
        active = [c for c in customers if c.active]
        payloads: list[tuple[str, dict[str, Any]]] = []
        for code, name, kind, channels, product, start, end, status, segment in campaigns:
            start_on = self.today + dt.timedelta(days=start)
            payload: dict[str, Any] = {
                "code": f"CMP-{year}-{code}",
                "name": name,
                "campaign_type": kind,
                "channels": channels,
                "target_segment": segment,
                "start_on": start_on.isoformat(),
                "end_on": (self.today + dt.timedelta(days=end)).isoformat(),
                "budget": f"{rng.choice((20, 30, 50, 80))}000.00",
                "organizer": self.dept["HQ-RETAIL"],
                "manager": self.staff["hq_zhao"],
                "status": status,
            }
            if product:
                payload["product"] = self.products[product]
            payloads.append(("hq_zhao", payload))
        ids = self.create_all("campaign", payloads)
        started: list[tuple[int, dt.datetime]] = []  # campaigns under way: id, start
        for campaign_id, (_, payload) in zip(ids, payloads, strict=True):
            if payload["status"] != "planned":
                start_on = dt.date.fromisoformat(payload["start_on"])
                started.append((campaign_id, _at(start_on, 9, 0)))
        if not active or not started:
            return
        planned = []
        members: set[tuple[int, int]] = set()
        for _ in range(len(customers) // 4):
            campaign_id, start_at = rng.choice(started)
            c = rng.choice(active)
            if (campaign_id, c.id) in members:
                continue
            members.add((campaign_id, c.id))
            response = self.pick(
                (
                    ("not_contacted", 15),
                    ("no_answer", 15),
                    ("contacted", 30),
                    ("interested", 20),
                    ("declined", 17),
                    ("unsubscribed", 3),
                )
            )
            payload = {
                "campaign": campaign_id,
                "response": response,
                "assigned_rm": self.staff[c.rm],
            }
            if response != "not_contacted":
                contacted = self.moment(start_at)
                payload["contacted_at"] = contacted.isoformat()
                if response == "interested" and rng.random() < 0.5:
                    payload.update(
                        converted=True,
                        converted_amount=_money(rng.uniform(10_000, 500_000), 1000),
                        converted_at=self.moment(contacted).isoformat(),
                    )
            planned.append((start_at, c, payload))
        planned.sort(key=lambda p: p[0])
        items = [("hq_zhao", {**p, "customer": c.id}) for _, c, p in planned]
        self.create_all("campaign_member", items)
