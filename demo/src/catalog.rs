//! The demo shop's fixed catalogue: SQL statements (shared by the spans of the web service
//! and the `pg_stat_statements` metrics of the database, so both tell the same story),
//! HTTP routes, client addresses and hosts.

/// One normalized SQL statement the shop runs.
pub struct Query {
    /// Normalized text, as `pg_stat_statements` and `db.statement` show it.
    pub text: &'static str,
    /// `db.operation`.
    pub op: &'static str,
    /// `db.sql.table`.
    pub table: &'static str,
    /// Median duration in milliseconds.
    pub median_ms: f64,
    /// Log-normal shape of the duration.
    pub sigma: f64,
    /// Rows a call returns or touches, on average.
    pub rows: f64,
}

/// Statement indexes, named.
pub mod q {
    /// Session lookup.
    pub const SESSION: usize = 0;
    /// Product list page.
    pub const PRODUCT_LIST: usize = 1;
    /// Product count for pagination.
    pub const PRODUCT_COUNT: usize = 2;
    /// One product by slug.
    pub const PRODUCT_BY_SLUG: usize = 3;
    /// Cart contents.
    pub const CART_ITEMS: usize = 4;
    /// Add to cart.
    pub const CART_INSERT: usize = 5;
    /// Login user lookup.
    pub const USER_BY_NAME: usize = 6;
    /// Product search.
    pub const SEARCH: usize = 7;
    /// New order.
    pub const ORDER_INSERT: usize = 8;
    /// Stock decrement.
    pub const STOCK_UPDATE: usize = 9;
    /// The sales report of the worker: the slow one.
    pub const SALES_REPORT: usize = 10;
    /// Admin order list.
    pub const ADMIN_ORDERS: usize = 11;
}

/// Every statement, indexed by the constants of [`q`].
pub const QUERIES: &[Query] = &[
    Query {
        text: "SELECT \"django_session\".\"session_key\", \"django_session\".\"session_data\", \"django_session\".\"expire_date\" FROM \"django_session\" WHERE (\"django_session\".\"expire_date\" > $1 AND \"django_session\".\"session_key\" = $2) LIMIT $3",
        op: "SELECT",
        table: "django_session",
        median_ms: 0.6,
        sigma: 0.4,
        rows: 1.0,
    },
    Query {
        text: "SELECT \"catalog_product\".\"id\", \"catalog_product\".\"name\", \"catalog_product\".\"slug\", \"catalog_product\".\"price\" FROM \"catalog_product\" WHERE \"catalog_product\".\"is_active\" ORDER BY \"catalog_product\".\"created_at\" DESC LIMIT $1 OFFSET $2",
        op: "SELECT",
        table: "catalog_product",
        median_ms: 4.0,
        sigma: 0.5,
        rows: 24.0,
    },
    Query {
        text: "SELECT COUNT(*) AS \"__count\" FROM \"catalog_product\" WHERE \"catalog_product\".\"is_active\"",
        op: "SELECT",
        table: "catalog_product",
        median_ms: 2.5,
        sigma: 0.4,
        rows: 1.0,
    },
    Query {
        text: "SELECT \"catalog_product\".\"id\", \"catalog_product\".\"name\", \"catalog_product\".\"slug\", \"catalog_product\".\"description\", \"catalog_product\".\"price\" FROM \"catalog_product\" WHERE \"catalog_product\".\"slug\" = $1 LIMIT $2",
        op: "SELECT",
        table: "catalog_product",
        median_ms: 0.9,
        sigma: 0.4,
        rows: 1.0,
    },
    Query {
        text: "SELECT \"cart_cartitem\".\"id\", \"cart_cartitem\".\"quantity\", \"catalog_product\".\"name\", \"catalog_product\".\"price\" FROM \"cart_cartitem\" INNER JOIN \"catalog_product\" ON (\"cart_cartitem\".\"product_id\" = \"catalog_product\".\"id\") WHERE \"cart_cartitem\".\"cart_id\" = $1",
        op: "SELECT",
        table: "cart_cartitem",
        median_ms: 1.4,
        sigma: 0.5,
        rows: 3.0,
    },
    Query {
        text: "INSERT INTO \"cart_cartitem\" (\"cart_id\", \"product_id\", \"quantity\", \"added_at\") VALUES ($1, $2, $3, $4) RETURNING \"cart_cartitem\".\"id\"",
        op: "INSERT",
        table: "cart_cartitem",
        median_ms: 1.8,
        sigma: 0.5,
        rows: 1.0,
    },
    Query {
        text: "SELECT \"auth_user\".\"id\", \"auth_user\".\"password\", \"auth_user\".\"username\", \"auth_user\".\"is_active\" FROM \"auth_user\" WHERE \"auth_user\".\"username\" = $1 LIMIT $2",
        op: "SELECT",
        table: "auth_user",
        median_ms: 0.7,
        sigma: 0.4,
        rows: 1.0,
    },
    Query {
        text: "SELECT \"catalog_product\".\"id\", \"catalog_product\".\"name\", \"catalog_product\".\"slug\", \"catalog_product\".\"price\" FROM \"catalog_product\" WHERE UPPER(\"catalog_product\".\"name\"::text) LIKE UPPER($1) ORDER BY \"catalog_product\".\"name\" ASC LIMIT $2",
        op: "SELECT",
        table: "catalog_product",
        median_ms: 38.0,
        sigma: 0.6,
        rows: 12.0,
    },
    Query {
        text: "INSERT INTO \"orders_order\" (\"user_id\", \"status\", \"total\", \"created_at\") VALUES ($1, $2, $3, $4) RETURNING \"orders_order\".\"id\"",
        op: "INSERT",
        table: "orders_order",
        median_ms: 2.2,
        sigma: 0.5,
        rows: 1.0,
    },
    Query {
        text: "UPDATE \"inventory_stock\" SET \"quantity\" = (\"inventory_stock\".\"quantity\" - $1) WHERE \"inventory_stock\".\"product_id\" = $2",
        op: "UPDATE",
        table: "inventory_stock",
        median_ms: 3.0,
        sigma: 0.8,
        rows: 1.0,
    },
    Query {
        text: "SELECT date_trunc($1, \"orders_order\".\"created_at\") AS \"day\", SUM((\"orders_orderline\".\"price\" * \"orders_orderline\".\"quantity\")) AS \"revenue\", COUNT(DISTINCT \"orders_order\".\"id\") AS \"orders\" FROM \"orders_order\" INNER JOIN \"orders_orderline\" ON (\"orders_order\".\"id\" = \"orders_orderline\".\"order_id\") WHERE \"orders_order\".\"created_at\" >= $2 GROUP BY 1 ORDER BY 1",
        op: "SELECT",
        table: "orders_order",
        median_ms: 1450.0,
        sigma: 0.3,
        rows: 90.0,
    },
    Query {
        text: "SELECT \"orders_order\".\"id\", \"orders_order\".\"status\", \"orders_order\".\"total\", \"auth_user\".\"username\" FROM \"orders_order\" LEFT OUTER JOIN \"auth_user\" ON (\"orders_order\".\"user_id\" = \"auth_user\".\"id\") ORDER BY \"orders_order\".\"created_at\" DESC LIMIT $1",
        op: "SELECT",
        table: "orders_order",
        median_ms: 18.0,
        sigma: 0.6,
        rows: 100.0,
    },
];

/// The `pg_stat_statements` query id of statement `i`: a stable signed 64-bit number
/// (FNV-1a of the text), printed in decimal as postgres_exporter does.
pub fn query_id(i: usize) -> String {
    let text = QUERIES.get(i).map(|q| q.text).unwrap_or("");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h as i64).to_string()
}

/// Client addresses of ordinary visitors (documentation ranges), most active first.
pub const CLIENTS: &[&str] = &[
    "203.0.113.24",
    "198.51.100.7",
    "203.0.113.88",
    "192.0.2.145",
    "198.51.100.62",
    "203.0.113.5",
    "192.0.2.33",
    "198.51.100.201",
    "203.0.113.140",
    "192.0.2.78",
    "198.51.100.19",
    "203.0.113.211",
    "192.0.2.9",
    "198.51.100.133",
    "203.0.113.67",
    "192.0.2.250",
];

/// The address that tries passwords (django-axes reports it).
pub const BRUTE_FORCE_CLIENT: &str = "185.220.101.47";
/// The address that scans for well-known paths (404s).
pub const SCANNER_CLIENT: &str = "45.146.164.110";

/// User agents of ordinary visitors.
pub const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
];

/// Product slugs.
pub const PRODUCTS: &[&str] = &[
    "red-mug",
    "espresso-cup",
    "linen-apron",
    "oak-cutting-board",
    "cast-iron-pan",
    "tea-strainer",
    "pour-over-kettle",
    "bread-knife",
];

/// User names that log in.
pub const USERS: &[&str] = &["sara", "reza", "mina", "omid", "lena", "tom", "aria", "nika"];

/// Names the brute-force client tries.
pub const ATTACKED_USERS: &[&str] = &["admin", "root", "test", "info", "shop", "support"];

/// A host: its name (the agent's `instance`), CPUs, memory and its role's extra disk.
pub struct Host {
    /// Host name.
    pub name: &'static str,
    /// CPU count.
    pub cpus: usize,
    /// Memory in GiB.
    pub mem_gib: f64,
    /// Base CPU busy share (0..1) at normal traffic.
    pub busy: f64,
    /// How much of the busy share follows the web traffic.
    pub traffic_share: f64,
    /// A data volume mounted at `/var/lib/postgresql` (database hosts).
    pub data_volume: bool,
}

/// The demo's hosts.
pub const HOSTS: &[Host] = &[
    Host {
        name: "web-1",
        cpus: 4,
        mem_gib: 16.0,
        busy: 0.12,
        traffic_share: 0.30,
        data_volume: false,
    },
    Host {
        name: "web-2",
        cpus: 4,
        mem_gib: 16.0,
        busy: 0.11,
        traffic_share: 0.30,
        data_volume: false,
    },
    Host {
        name: "worker-1",
        cpus: 2,
        mem_gib: 8.0,
        busy: 0.35,
        traffic_share: 0.15,
        data_volume: false,
    },
    Host {
        name: "db-1",
        cpus: 8,
        mem_gib: 32.0,
        busy: 0.18,
        traffic_share: 0.20,
        data_volume: true,
    },
    Host {
        name: "db-2",
        cpus: 4,
        mem_gib: 32.0,
        busy: 0.05,
        traffic_share: 0.02,
        data_volume: true,
    },
];

/// Where PostgreSQL (primary) runs.
pub const DB_HOST: &str = "db-1";
/// The streaming replica.
pub const DB_REPLICA: &str = "db-2";
/// Where Redis (cache and Celery broker) runs.
pub const REDIS_HOST: &str = "worker-1";
/// Celery queues; the last one backs up.
pub const QUEUES: &[&str] = &["celery", "emails", "reports"];

/// A view of the shop: route, weight in the traffic mix, own processing time.
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// `http.route` (Django's URL pattern).
    pub route: &'static str,
    /// The view name (django-prometheus' `view` label).
    pub view: &'static str,
    /// Share of the traffic mix.
    pub weight: f64,
    /// Median of the view's own processing time (ms).
    pub median_ms: f64,
    /// Log-normal shape of it.
    pub sigma: f64,
}

/// The shop's views.
pub const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        route: "/products/",
        view: "product_list",
        weight: 34.0,
        median_ms: 18.0,
        sigma: 0.45,
    },
    Route {
        method: "GET",
        route: "/products/<slug:slug>/",
        view: "product_detail",
        weight: 26.0,
        median_ms: 12.0,
        sigma: 0.45,
    },
    Route {
        method: "GET",
        route: "/cart/",
        view: "cart",
        weight: 12.0,
        median_ms: 10.0,
        sigma: 0.4,
    },
    Route {
        method: "POST",
        route: "/cart/add/",
        view: "cart_add",
        weight: 7.0,
        median_ms: 9.0,
        sigma: 0.4,
    },
    Route {
        method: "POST",
        route: "/checkout/",
        view: "checkout",
        weight: 3.0,
        median_ms: 25.0,
        sigma: 0.4,
    },
    Route {
        method: "GET",
        route: "/search/",
        view: "search",
        weight: 9.0,
        median_ms: 14.0,
        sigma: 0.5,
    },
    Route {
        method: "POST",
        route: "/accounts/login/",
        view: "login",
        weight: 3.0,
        median_ms: 140.0,
        sigma: 0.15,
    },
    Route {
        method: "GET",
        route: "/healthz/",
        view: "healthz",
        weight: 5.0,
        median_ms: 0.8,
        sigma: 0.3,
    },
    Route {
        method: "GET",
        route: "/admin/orders/order/",
        view: "admin:orders_order_changelist",
        weight: 1.0,
        median_ms: 45.0,
        sigma: 0.5,
    },
];

/// Paths the scanner probes.
pub const SCANNED: &[&str] = &[
    "/wp-login.php",
    "/.env",
    "/phpmyadmin/index.php",
    "/.git/config",
    "/xmlrpc.php",
    "/admin.php",
    "/backup.zip",
];
