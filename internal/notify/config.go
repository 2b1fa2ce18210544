package notify

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of the e-mail settings (engine.md §17).
const (
	DefaultEmailFrom   = "noreply@owlmetry.com"
	DefaultWebAppURL   = "http://localhost:3000"
	DefaultSMTPPort    = 587
	DefaultSMTPSPort   = 465
	DefaultSMTPTimeout = 30 * time.Second
)

// AlertMode is SYSTEM_JOBS_ALERT_ON: which system runs the server owner hears about
// (engine.md §14.2).
type AlertMode string

// The two alert modes.
const (
	// AlertAll alerts on every system run except completed runs that say _silent.
	AlertAll AlertMode = "all"
	// AlertFailures alerts on failed and aborted system runs only.
	AlertFailures AlertMode = "failures"
)

// TLSMode is how the SMTP connection is protected.
type TLSMode string

// The TLS modes. SMTP_TLS accepts the values as written; SMTP_URL spells them as the
// scheme (smtps:// is TLSImplicit) and the starttls query parameter.
const (
	// TLSStartTLS requires STARTTLS and refuses to send in the clear (the default).
	TLSStartTLS TLSMode = "starttls"
	// TLSOpportunistic upgrades with STARTTLS when the server offers it.
	TLSOpportunistic TLSMode = "opportunistic"
	// TLSImplicit speaks TLS from the first byte (smtps, usually port 465).
	TLSImplicit TLSMode = "tls"
	// TLSNone never encrypts; for local relays and test sinks.
	TLSNone TLSMode = "none"
)

// SMTPConfig says how to reach the mail relay. The password never appears in String,
// in slog output or in errors.
type SMTPConfig struct {
	// Host is the relay's host name or address.
	Host string
	// Port defaults to 587, or 465 with TLSImplicit.
	Port int
	// Username and Password enable SMTP AUTH when Username is set.
	Username string
	Password string
	// TLS defaults to TLSStartTLS.
	TLS TLSMode
	// Timeout bounds one message, connection included. Defaults to 30s.
	Timeout time.Duration
}

// Addr is host:port.
func (c SMTPConfig) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// String describes the relay without the password.
func (c SMTPConfig) String() string {
	user := ""
	if c.Username != "" {
		user = c.Username + ":***@"
	}
	return fmt.Sprintf("smtp %s%s tls=%s timeout=%s", user, c.Addr(), c.TLS, c.Timeout)
}

// LogValue keeps the password out of structured logs.
func (c SMTPConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", c.Addr()),
		slog.String("username", c.Username),
		slog.Bool("password_set", c.Password != ""),
		slog.String("tls", string(c.TLS)),
		slog.Duration("timeout", c.Timeout),
	)
}

// Config is the e-mail configuration of a server process (engine.md §17, §14).
type Config struct {
	// SMTP is the relay; nil selects the log transport, which writes one INFO line per
	// e-mail and counts it as sent.
	SMTP *SMTPConfig
	// From is the sender. Defaults to noreply@owlmetry.com.
	From string
	// WebAppURL prefixes dashboard links, without a trailing slash. Defaults to
	// http://localhost:3000.
	WebAppURL string
	// AlertEmails receive system alerts; empty disables them.
	AlertEmails []string
	// AlertOn selects which system runs alert. Defaults to AlertAll.
	AlertOn AlertMode
}

// LogValue keeps the SMTP password out of structured logs.
func (c Config) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("from", c.From),
		slog.String("web_app_url", c.WebAppURL),
		slog.Int("alert_recipients", len(c.AlertEmails)),
		slog.String("alert_on", string(c.AlertOn)),
	}
	if c.SMTP == nil {
		attrs = append(attrs, slog.String("transport", "log"))
	} else {
		attrs = append(attrs, slog.String("transport", "smtp"), slog.Any("smtp", *c.SMTP))
	}
	return slog.GroupValue(attrs...)
}

// withDefaults fills the zero fields, so a Config built in code behaves like one loaded
// from an empty environment.
func (c Config) withDefaults() Config {
	if c.From == "" {
		c.From = DefaultEmailFrom
	}
	if c.WebAppURL == "" {
		c.WebAppURL = DefaultWebAppURL
	}
	c.WebAppURL = strings.TrimRight(c.WebAppURL, "/")
	if c.AlertOn == "" {
		c.AlertOn = AlertAll
	}
	if c.SMTP != nil {
		s := *c.SMTP
		if s.TLS == "" {
			s.TLS = TLSStartTLS
		}
		if s.Port == 0 {
			s.Port = DefaultSMTPPort
			if s.TLS == TLSImplicit {
				s.Port = DefaultSMTPSPort
			}
		}
		if s.Timeout <= 0 {
			s.Timeout = DefaultSMTPTimeout
		}
		c.SMTP = &s
	}
	return c
}

// LoadConfig reads the e-mail settings through lookupEnv: SMTP_URL, or SMTP_HOST with
// SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD and SMTP_TLS; SMTP_TIMEOUT; EMAIL_FROM;
// WEB_APP_URL; SYSTEM_JOBS_ALERT_EMAIL and SYSTEM_JOBS_ALERT_ON. An empty value counts
// as unset. A bad value is one error naming the variable, never echoing the password.
//
// SMTP_URL has the form smtp://user:password@host:port?starttls=mandatory (or
// opportunistic, none) or smtps://user:password@host:port; user and password are
// percent-encoded. smtp:// defaults to port 587 and mandatory STARTTLS, smtps:// to 465.
func LoadConfig(lookupEnv func(string) (string, bool)) (Config, error) {
	get := func(name string) string {
		v, ok := lookupEnv(name)
		if !ok {
			return ""
		}
		return strings.TrimSpace(v)
	}
	var cfg Config

	timeout := DefaultSMTPTimeout
	if v := get("SMTP_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return Config{}, fmt.Errorf("invalid SMTP_TIMEOUT %q: want a positive Go duration such as 30s", v)
		}
		timeout = d
	}

	rawURL := get("SMTP_URL")
	host := get("SMTP_HOST")
	switch {
	case rawURL != "" && host != "":
		return Config{}, errors.New("invalid SMTP_URL: SMTP_HOST is set too; use one of them")
	case rawURL != "":
		s, err := parseSMTPURL(rawURL)
		if err != nil {
			return Config{}, fmt.Errorf("invalid SMTP_URL: %w", err)
		}
		s.Timeout = timeout
		cfg.SMTP = &s
	}

	// The discrete variables are checked even when SMTP_HOST is empty, so a typo in
	// SMTP_PORT does not wait for the day a host is configured.
	port := 0
	if v := get("SMTP_PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return Config{}, fmt.Errorf("invalid SMTP_PORT %q: want a port number from 1 to 65535", v)
		}
		port = p
	}
	tlsMode := TLSStartTLS
	if v := get("SMTP_TLS"); v != "" {
		switch m := TLSMode(strings.ToLower(v)); m {
		case TLSStartTLS, TLSOpportunistic, TLSImplicit, TLSNone:
			tlsMode = m
		default:
			return Config{}, fmt.Errorf("invalid SMTP_TLS %q: want starttls, opportunistic, tls or none", v)
		}
	}
	if host != "" {
		if strings.ContainsAny(host, "/@: ") && net.ParseIP(host) == nil {
			return Config{}, fmt.Errorf("invalid SMTP_HOST %q: want a host name or address without scheme or port", host)
		}
		pw, _ := lookupEnv("SMTP_PASSWORD") // passwords may end in spaces
		cfg.SMTP = &SMTPConfig{
			Host: host, Port: port, Username: get("SMTP_USERNAME"), Password: pw,
			TLS: tlsMode, Timeout: timeout,
		}
	}

	cfg.From = DefaultEmailFrom
	if v := get("EMAIL_FROM"); v != "" {
		if _, err := mail.ParseAddress(v); err != nil {
			return Config{}, fmt.Errorf("invalid EMAIL_FROM %q: %s", v, addressProblem(err))
		}
		cfg.From = v
	}

	cfg.WebAppURL = DefaultWebAppURL
	if v := get("WEB_APP_URL"); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Config{}, fmt.Errorf("invalid WEB_APP_URL %q: want an absolute http or https URL", v)
		}
		cfg.WebAppURL = v
	}

	if v := get("SYSTEM_JOBS_ALERT_EMAIL"); v != "" {
		for _, part := range strings.Split(v, ",") {
			addr := strings.TrimSpace(part)
			if addr == "" {
				continue
			}
			if _, err := mail.ParseAddress(addr); err != nil {
				return Config{}, fmt.Errorf("invalid SYSTEM_JOBS_ALERT_EMAIL: %q: %s", addr, addressProblem(err))
			}
			cfg.AlertEmails = append(cfg.AlertEmails, addr)
		}
	}

	cfg.AlertOn = AlertAll
	if v := get("SYSTEM_JOBS_ALERT_ON"); v != "" {
		switch m := AlertMode(strings.ToLower(v)); m {
		case AlertAll, AlertFailures:
			cfg.AlertOn = m
		default:
			return Config{}, fmt.Errorf("invalid SYSTEM_JOBS_ALERT_ON %q: want all or failures", v)
		}
	}
	return cfg.withDefaults(), nil
}

// parseSMTPURL reads SMTP_URL. Its errors never contain the URL, which may hold the
// password.
func parseSMTPURL(raw string) (SMTPConfig, error) {
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) && strings.HasPrefix(uerr.Err.Error(), "invalid port") {
			return SMTPConfig{}, errors.New(uerr.Err.Error()) // the port is no secret
		}
		return SMTPConfig{}, errors.New("not a URL of the form smtp://user:password@host:port")
	}
	var s SMTPConfig
	switch u.Scheme {
	case "smtp":
		s.TLS, s.Port = TLSStartTLS, DefaultSMTPPort
	case "smtps":
		s.TLS, s.Port = TLSImplicit, DefaultSMTPSPort
	case "":
		return SMTPConfig{}, errors.New("missing scheme: want smtp:// or smtps://")
	default:
		return SMTPConfig{}, fmt.Errorf("unsupported scheme %q: want smtp or smtps", u.Scheme)
	}
	if u.Opaque != "" {
		return SMTPConfig{}, errors.New("missing // after the scheme")
	}
	s.Host = u.Hostname()
	if s.Host == "" {
		return SMTPConfig{}, errors.New("missing host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return SMTPConfig{}, fmt.Errorf("invalid port %q: want 1 to 65535", p)
		}
		s.Port = n
	}
	if u.User != nil {
		s.Username = u.User.Username()
		s.Password, _ = u.User.Password()
		if s.Username == "" && s.Password != "" {
			return SMTPConfig{}, errors.New("password without a user name")
		}
	}
	if u.Path != "" && u.Path != "/" {
		return SMTPConfig{}, errors.New("unexpected path: the URL ends after host:port")
	}
	if u.Fragment != "" {
		return SMTPConfig{}, errors.New("unexpected fragment")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return SMTPConfig{}, errors.New("malformed query string")
	}
	for key, vals := range q {
		if key != "starttls" {
			return SMTPConfig{}, fmt.Errorf("unknown parameter %q: only starttls is accepted", key)
		}
		if len(vals) != 1 {
			return SMTPConfig{}, errors.New("starttls given more than once")
		}
		if s.TLS == TLSImplicit {
			return SMTPConfig{}, errors.New("starttls does not apply to smtps://, which is TLS from the start")
		}
		switch strings.ToLower(vals[0]) {
		case "mandatory":
			s.TLS = TLSStartTLS
		case "opportunistic":
			s.TLS = TLSOpportunistic
		case "none":
			s.TLS = TLSNone
		default:
			return SMTPConfig{}, fmt.Errorf("invalid starttls %q: want mandatory, opportunistic or none", vals[0])
		}
	}
	return s, nil
}

// addressProblem shortens net/mail's parse errors to what helps a reader fix the value.
func addressProblem(err error) string {
	return strings.TrimPrefix(err.Error(), "mail: ")
}
