package itunes

import "strings"

// appendixA is upstreams.md Appendix A: every assigned ISO 3166-1 alpha-2 code except
// aq, plus xk. The emulator's default storefront set; kept here rather than shared with
// the client so a misreading of the appendix cannot hide in common code.
const appendixA = `
ad ae af ag ai al am ao ar as at au aw ax az
ba bb bd be bf bg bh bi bj bl bm bn bo bq br bs bt bv bw by bz
ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz
de dj dk dm do dz
ec ee eg eh er es et
fi fj fk fm fo fr
ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy
hk hm hn hr ht hu
id ie il im in io iq ir is it
je jm jo jp
ke kg kh ki km kn kp kr kw ky kz
la lb lc li lk lr ls lt lu lv ly
ma mc md me mf mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz
na nc ne nf ng ni nl no np nr nu nz
om
pa pe pf pg ph pk pl pm pn pr ps pt pw py
qa
re ro rs ru rw
sa sb sc sd se sg sh si sj sk sl sm sn so sr ss st sv sx sy sz
tc td tf tg th tj tk tl tm tn to tr tt tv tw tz
ua ug um us uy uz
va vc ve vg vi vn vu
wf ws
xk
ye yt
za zm zw
`

// DefaultStorefronts returns the 249 country codes of upstreams.md Appendix A, sorted:
// the storefront set the emulator accepts unless Options.Storefronts says otherwise.
func DefaultStorefronts() []string { return strings.Fields(appendixA) }

// currencies gives the storefront currency for the result's currency field; storefronts
// not listed answer USD. Only cosmetic: owlmetry does not read the field.
var currencies = map[string]string{
	"us": "USD", "ca": "CAD", "gb": "GBP", "jp": "JPY", "au": "AUD", "ch": "CHF", "cn": "CNY",
	"in": "INR", "br": "BRL", "mx": "MXN", "kr": "KRW", "se": "SEK", "no": "NOK", "dk": "DKK",
	"pl": "PLN", "tr": "TRY", "ru": "RUB", "nz": "NZD", "sg": "SGD", "hk": "HKD", "tw": "TWD",
	"de": "EUR", "fr": "EUR", "it": "EUR", "es": "EUR", "nl": "EUR", "be": "EUR", "at": "EUR",
	"ie": "EUR", "fi": "EUR", "pt": "EUR", "gr": "EUR", "lu": "EUR", "sk": "EUR", "si": "EUR",
	"ee": "EUR", "lv": "EUR", "lt": "EUR", "cy": "EUR", "mt": "EUR", "hr": "EUR",
}

func currencyOf(country string) string {
	if c, ok := currencies[country]; ok {
		return c
	}
	return "USD"
}
