//! The frame every console page shares (`templates/console/base.html`): the title and the
//! header's navigation, which depends on who is signed in and which org the page is about.

use super::session::ConsoleUser;
use ticketsync_actors::org::Org;

/// What `base.html` needs: every page template has a `layout` field.
pub struct Layout {
    /// The page title (before " · ticketsync").
    pub title: String,
    /// The navigation; None on pages shown before sign-in.
    pub nav: Option<Nav>,
}

/// The header navigation of a signed-in admin.
pub struct Nav {
    /// Whether to show the operator's links (Access, Engine).
    pub operator: bool,
    /// The sign-out form's CSRF token.
    pub csrf: String,
    /// The org the page is about: its links (Settings, Inbox, Access).
    pub org: Option<OrgLink>,
    /// Which link is the current page: "orgs", "settings", "inbox", "access" or "engine".
    pub current: &'static str,
}

/// An org in the navigation.
pub struct OrgLink {
    /// The org's id, as in its URLs.
    pub id: String,
    /// The org's name.
    pub name: String,
}

impl Layout {
    /// A page shown without a session (sign-in, errors).
    pub fn signed_out(title: &str) -> Self {
        Self {
            title: title.to_string(),
            nav: None,
        }
    }

    /// A page of a signed-in admin, about `org` when given; `current` names the nav link.
    pub fn signed_in(
        user: &ConsoleUser,
        title: &str,
        current: &'static str,
        org: Option<&Org>,
    ) -> Self {
        Self {
            title: title.to_string(),
            nav: Some(Nav {
                operator: user.principal.is_operator(),
                csrf: user.csrf.clone(),
                org: org.map(|o| OrgLink {
                    id: o.id.to_string(),
                    name: o.name.clone(),
                }),
                current,
            }),
        }
    }
}
