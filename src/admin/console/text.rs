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
    ready: "就绪",
    starting: "启动中",
    degraded: "重启中",
    failed: "失败",
    disabled: "已停用",
    stopped: "已停止",
    needs_authorization: "需要登录授权",
};
