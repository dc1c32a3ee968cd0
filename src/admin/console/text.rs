//! The console's words, in English and Chinese. Every page takes them from one [`Text`], so
//! a word missing in one language is a compile error, not a blank on a page.

use axum::http::{HeaderMap, header};

/// The cookie that keeps a browser's choice of language.
const COOKIE: &str = "mcps_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lang {
    En,
    Zh,
}

impl Lang {
    /// The browser's choice (the cookie), else the first of its `Accept-Language` we speak.
    pub fn of(headers: &HeaderMap) -> Self {
        let chosen = super::cookie(headers, COOKIE).and_then(Self::named);
        chosen.unwrap_or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| {
                    value
                        .split(',')
                        .filter_map(|tag| tag.split(';').next())
                        .find_map(|tag| Self::named(tag.trim().split('-').next()?))
                })
                .unwrap_or(Self::En)
        })
    }

    pub fn named(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "en" => Some(Self::En),
            "zh" => Some(Self::Zh),
            _ => None,
        }
    }

    /// Its BCP 47 tag, for `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Zh => "zh-CN",
        }
    }

    /// The other language, which the page header offers.
    pub fn other(self) -> Self {
        match self {
            Self::En => Self::Zh,
            Self::Zh => Self::En,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Zh => "zh",
        }
    }

    pub fn text(self) -> &'static Text {
        match self {
            Self::En => &EN,
            Self::Zh => &ZH,
        }
    }

    /// The `Set-Cookie` value that keeps this language for a year.
    pub fn cookie(self) -> String {
        format!(
            "{COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
            self.code()
        )
    }
}

/// Every word the console shows.
pub(super) struct Text {
    pub language_name: &'static str,
    pub skip_to_content: &'static str,
    pub main_navigation: &'static str,
    pub overview: &'static str,
    pub upstreams_page: &'static str,
    pub sign_in: &'static str,
    pub sign_in_title: &'static str,
    pub sign_out: &'static str,
    pub signed_in_as: &'static str,
    pub username: &'static str,
    pub password: &'static str,
    pub first_password_hint: &'static str,
    pub version: &'static str,
    pub uptime: &'static str,
    pub sessions: &'static str,
    pub calls: &'static str,
    pub errors: &'static str,
    pub upstreams: &'static str,
    pub upstream: &'static str,
    pub state: &'static str,
    pub transport: &'static str,
    pub protocol: &'static str,
    pub tools: &'static str,
    pub restarts: &'static str,
    pub last_error: &'static str,
    pub stderr_tail: &'static str,
    pub from_config: &'static str,
    pub from_api: &'static str,
    pub none: &'static str,
    pub live_note: &'static str,
    pub done: &'static str,
    pub add_upstream: &'static str,
    pub add_upstream_hint: &'static str,
    pub name: &'static str,
    pub command: &'static str,
    pub args: &'static str,
    pub env: &'static str,
    pub url: &'static str,
    pub headers: &'static str,
    pub prefix: &'static str,
    pub prefix_hint: &'static str,
    pub start_disabled: &'static str,
    pub add: &'static str,
    pub restart: &'static str,
    pub enable: &'static str,
    pub disable: &'static str,
    pub delete: &'static str,
    pub actions: &'static str,
    pub runs: &'static str,
    pub read_only_hint: &'static str,
    pub allowlist_empty: &'static str,
    pub allowlist_is: &'static str,
    pub one_per_line: &'static str,
    pub tools_page: &'static str,
    pub search: &'static str,
    pub search_label: &'static str,
    pub every_upstream: &'static str,
    pub virtual_server: &'static str,
    pub no_tools: &'static str,
    pub description: &'static str,
    pub input_schema: &'static str,
    pub try_it: &'static str,
    pub call: &'static str,
    pub required: &'static str,
    pub result: &'static str,
    pub tool_failed: &'static str,
    pub call_refused: &'static str,
    pub structured_content: &'static str,
    pub image_result: &'static str,
    pub json_hint: &'static str,
    pub calls_page: &'static str,
    pub calls_hint: &'static str,
    pub filters: &'static str,
    pub filter: &'static str,
    pub any: &'static str,
    pub tool: &'static str,
    pub outcome: &'static str,
    pub user: &'static str,
    pub client: &'static str,
    pub period: &'static str,
    pub all_time: &'static str,
    pub last_hour: &'static str,
    pub last_day: &'static str,
    pub last_week: &'static str,
    pub no_calls: &'static str,
    pub when: &'static str,
    pub took: &'static str,
    pub older: &'static str,
    pub call_record: &'static str,
    pub error: &'static str,
    pub ready: &'static str,
    pub starting: &'static str,
    pub degraded: &'static str,
    pub failed: &'static str,
    pub disabled: &'static str,
    pub stopped: &'static str,
    pub needs_authorization: &'static str,
}

impl Text {
    /// An upstream state's name (`Phase::as_str`) in this language.
    pub fn state(&self, state: &str) -> &'static str {
        match state {
            "ready" => self.ready,
            "starting" => self.starting,
            "degraded" => self.degraded,
            "failed" => self.failed,
            "disabled" => self.disabled,
            "stopped" => self.stopped,
            _ => self.needs_authorization,
        }
    }
}

const EN: Text = Text {
    language_name: "English",
    skip_to_content: "Skip to content",
    main_navigation: "Main",
    overview: "Overview",
    upstreams_page: "Upstreams",
    sign_in: "Sign in",
    sign_in_title: "Sign in to the MCPS.ONE console",
    sign_out: "Sign out",
    signed_in_as: "Signed in as",
    username: "Username",
    password: "Password",
    first_password_hint: "The first user, admin, had its password printed once when the gateway first started (or set from MCPS_ADMIN_PASSWORD).",
    version: "Version",
    uptime: "Up for",
    sessions: "Client sessions",
    calls: "Tool calls",
    errors: "Failed calls",
    upstreams: "Upstreams",
    upstream: "Upstream",
    state: "State",
    transport: "Transport",
    protocol: "Protocol",
    tools: "Tools",
    restarts: "Restarts",
    last_error: "Last error",
    stderr_tail: "Last lines on stderr",
    from_config: "proxy.yaml",
    from_api: "added through the API",
    none: "none",
    live_note: "Updated every two seconds.",
    done: "Done",
    add_upstream: "Add an upstream",
    add_upstream_hint: "A program to run (stdio) or a URL to connect to (streamable HTTP; a URL ending in /sse is legacy SSE, ws:// is WebSocket). It is kept in the registry and started at once.",
    name: "Name",
    command: "Command",
    args: "Arguments",
    env: "Environment (NAME=value)",
    url: "URL",
    headers: "Headers (Name: value)",
    prefix: "Tool name prefix",
    prefix_hint: "Blank: the upstream's name.",
    start_disabled: "Add it disabled",
    add: "Add",
    restart: "Restart",
    enable: "Enable",
    disable: "Disable",
    delete: "Delete",
    actions: "Actions",
    runs: "Runs",
    read_only_hint: "Upstreams of proxy.yaml are changed in proxy.yaml (then reload); those added here are kept in the registry.",
    allowlist_empty: "security.spawn_allowlist in proxy.yaml is empty: only URL upstreams can be added here.",
    allowlist_is: "Commands allowed (security.spawn_allowlist):",
    one_per_line: "one a line",
    tools_page: "Tools",
    search: "Search",
    search_label: "Words in a tool's name or description",
    every_upstream: "Every upstream",
    virtual_server: "As shown by",
    no_tools: "No tool matches.",
    description: "Description",
    input_schema: "Input schema",
    try_it: "Try it",
    call: "Call",
    required: "required",
    result: "Result",
    tool_failed: "The tool ran and reported an error (isError).",
    call_refused: "The call could not run:",
    structured_content: "Structured content",
    image_result: "An image the tool returned",
    json_hint: "JSON",
    calls_page: "Calls",
    calls_hint: "Newest first. A call is written to the history a moment after it ends.",
    filters: "Filters",
    filter: "Filter",
    any: "Any",
    tool: "Tool",
    outcome: "Outcome",
    user: "User",
    client: "Client",
    period: "Since",
    all_time: "The beginning",
    last_hour: "An hour ago",
    last_day: "A day ago",
    last_week: "A week ago",
    no_calls: "No call matches.",
    when: "When",
    took: "Took",
    older: "Older calls",
    call_record: "Call",
    error: "Error",
    ready: "ready",
    starting: "starting",
    degraded: "restarting",
    failed: "failed",
    disabled: "disabled",
    stopped: "stopped",
    needs_authorization: "needs sign-in",
};

const ZH: Text = Text {
    language_name: "中文",
    skip_to_content: "跳到正文",
    main_navigation: "主导航",
    overview: "概览",
    upstreams_page: "上游服务",
    sign_in: "登录",
    sign_in_title: "登录 MCPS.ONE 控制台",
    sign_out: "退出登录",
    signed_in_as: "当前用户",
    username: "用户名",
    password: "密码",
    first_password_hint: "首个用户 admin 的密码在网关首次启动时打印过一次（或取自 MCPS_ADMIN_PASSWORD）。",
    version: "版本",
    uptime: "已运行",
    sessions: "客户端会话",
    calls: "工具调用",
    errors: "失败的调用",
    upstreams: "上游服务",
    upstream: "上游",
    state: "状态",
    transport: "传输方式",
    protocol: "协议",
    tools: "工具",
    restarts: "重启次数",
    last_error: "最近错误",
    stderr_tail: "stderr 最后几行",
    from_config: "proxy.yaml",
    from_api: "通过 API 添加",
    none: "无",
    live_note: "每两秒更新一次。",
    done: "完成",
    add_upstream: "添加上游",
    add_upstream_hint: "要运行的程序（stdio），或要连接的 URL（可流式 HTTP；以 /sse 结尾为旧版 SSE，ws:// 为 WebSocket）。它会保存在注册库中并立即启动。",
    name: "名称",
    command: "命令",
    args: "参数",
    env: "环境变量（NAME=value）",
    url: "URL",
    headers: "请求头（Name: value）",
    prefix: "工具名前缀",
    prefix_hint: "留空：使用上游的名称。",
    start_disabled: "添加为已停用",
    add: "添加",
    restart: "重启",
    enable: "启用",
    disable: "停用",
    delete: "删除",
    actions: "操作",
    runs: "运行",
    read_only_hint: "proxy.yaml 中的上游请在 proxy.yaml 中修改（然后重新加载）；在这里添加的保存在注册库中。",
    allowlist_empty: "proxy.yaml 的 security.spawn_allowlist 为空：这里只能添加 URL 上游。",
    allowlist_is: "允许的命令（security.spawn_allowlist）：",
    one_per_line: "每行一个",
    tools_page: "工具",
    search: "搜索",
    search_label: "工具名称或描述中的词",
    every_upstream: "全部上游",
    virtual_server: "按虚拟服务器",
    no_tools: "没有匹配的工具。",
    description: "描述",
    input_schema: "输入模式",
    try_it: "试用",
    call: "调用",
    required: "必填",
    result: "结果",
    tool_failed: "工具已运行并报告错误（isError）。",
    call_refused: "调用无法执行：",
    structured_content: "结构化内容",
    image_result: "工具返回的图片",
    json_hint: "JSON",
    calls_page: "调用记录",
    calls_hint: "最新的在前。调用结束片刻后写入记录。",
    filters: "筛选",
    filter: "筛选",
    any: "全部",
    tool: "工具",
    outcome: "结果",
    user: "用户",
    client: "客户端",
    period: "起始时间",
    all_time: "最早",
    last_hour: "一小时前",
    last_day: "一天前",
    last_week: "一周前",
    no_calls: "没有匹配的调用。",
    when: "时间",
    took: "耗时",
    older: "更早的调用",
    call_record: "调用",
    error: "错误",
    ready: "就绪",
    starting: "启动中",
    degraded: "重启中",
    failed: "失败",
    disabled: "已停用",
    stopped: "已停止",
    needs_authorization: "需要登录授权",
};
