package emrarchive.oracles;

import eu.europa.esig.dss.diagnostic.DiagnosticData;
import eu.europa.esig.dss.diagnostic.EvidenceRecordWrapper;
import eu.europa.esig.dss.diagnostic.TimestampWrapper;
import eu.europa.esig.dss.diagnostic.jaxb.XmlDigestMatcher;
import eu.europa.esig.dss.enumerations.DigestMatcherType;
import eu.europa.esig.dss.evidencerecord.common.validation.DefaultEvidenceRecordValidator;
import eu.europa.esig.dss.model.FileDocument;
import eu.europa.esig.dss.simplereport.SimpleReport;
import eu.europa.esig.dss.spi.validation.CommonCertificateVerifier;
import eu.europa.esig.dss.validation.reports.Reports;
import java.io.FileInputStream;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.cert.CertPathBuilder;
import java.security.cert.CertStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.CollectionCertStoreParameters;
import java.security.cert.PKIXBuilderParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509CertSelector;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Date;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.bouncycastle.asn1.tsp.ArchiveTimeStamp;
import org.bouncycastle.asn1.tsp.ArchiveTimeStampChain;
import org.bouncycastle.asn1.tsp.ArchiveTimeStampSequence;
import org.bouncycastle.asn1.tsp.EvidenceRecord;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cms.SignerInformationVerifier;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.operator.DigestCalculatorProvider;
import org.bouncycastle.operator.jcajce.JcaDigestCalculatorProviderBuilder;
import org.bouncycastle.tsp.TimeStampToken;
import org.bouncycastle.tsp.ers.ERSArchiveTimeStamp;
import org.bouncycastle.tsp.ers.ERSByteData;
import org.bouncycastle.tsp.ers.ERSEvidenceRecord;

/**
 * {@code ers TRUST_PEM AT DOC ER [DOC ER]...}: two independent judges of an RFC 4998 evidence
 * record against its detached document, one JSON line per pair {file: ER, document: DOC, bc: {...},
 * dss: {...}}. AT (ISO-8601 instant, or "now") is the moment the record is judged at.
 *
 * <p>Bouncy Castle ({@code org.bouncycastle.tsp.ers}) checks one chain at a time: its
 * ERSEvidenceRecord looks only at the last ArchiveTimeStampChain (the document, hashed with that
 * chain's algorithm together with the digest of the chains before it, must be in the first ATS's
 * tree and lead to its token's imprint; {@code validate} checks that the chain's last ATS covers
 * the earlier ones and verifies the last token's signature). So it is run on every prefix of the
 * chains (chains 0..k), which is what makes it judge every chain; each token's signature is
 * verified and its TSA certificate's path built to TRUST_PEM at the token's time (no revocation:
 * BC has no offline source for it).
 *
 * <p>EU DSS ({@code DefaultEvidenceRecordValidator}, dss-evidence-record-asn1): the record with
 * {@code setDetachedContents(DOC)}, TRUST_PEM the only anchors, offline, validation time AT;
 * reported as the simple report's indication/sub-indication, the diagnostic data's archive-object
 * digest matchers (covered = every one found and intact, and at least one), the structural
 * validation and each timestamp's verdict.
 */
final class Evidence {
  private Evidence() {}

  static void run(String[] args) throws Exception {
    List<X509Certificate> anchors = readPem(args[0]);
    Date at = args[1].equals("now") ? new Date() : Date.from(java.time.Instant.parse(args[1]));
    CommonCertificateVerifier verifier = Oracles.offlineVerifier(new java.io.File(args[0]));
    DigestCalculatorProvider digests = new JcaDigestCalculatorProviderBuilder().build();
    for (int i = 2; i + 1 < args.length; i += 2) {
      String doc = args[i];
      String er = args[i + 1];
      String bc = judged(() -> bouncyCastle(doc, er, at, anchors, digests));
      String dss = judged(() -> dss(doc, er, at, verifier));
      System.out.println("{\"file\":" + Oracles.q(er) + ",\"document\":" + Oracles.q(doc)
          + ",\"bc\":" + bc + ",\"dss\":" + dss + "}");
    }
  }

  /** One judge's verdict, or {error} when it throws: the other judge still reports. */
  private static String judged(Oracles.Judge judge) {
    try {
      return judge.run();
    } catch (Exception | LinkageError e) {
      return "{\"error\":" + Oracles.q(e.toString()) + "}";
    }
  }

  private static String bouncyCastle(String doc, String er, Date at,
      List<X509Certificate> anchors, DigestCalculatorProvider digests) throws Exception {
    EvidenceRecord record = EvidenceRecord.getInstance(Files.readAllBytes(Paths.get(er)));
    ArchiveTimeStampChain[] chains = record.getArchiveTimeStampSequence()
        .getArchiveTimeStampChains();
    byte[] data = Files.readAllBytes(Paths.get(doc));
    List<String> failures = new ArrayList<>();
    boolean present = true;
    boolean chained = true;
    boolean signed = true;
    boolean trusted = true;
    for (int k = 1; k <= chains.length; k++) {
      EvidenceRecord prefix = new EvidenceRecord(record.getDigestAlgorithms(), null, null,
          new ArchiveTimeStampSequence(Arrays.copyOfRange(chains, 0, k)));
      ERSEvidenceRecord ers = new ERSEvidenceRecord(prefix, digests);
      try {
        ers.validatePresent(new ERSByteData(data), at);
      } catch (Exception e) {
        present = false;
        failures.add("chain " + (k - 1) + " present: " + e.getMessage());
      }
      try {
        ers.validate(signerVerifier(ers.getSigningCertificate()));
      } catch (Exception e) {
        chained = false;
        failures.add("chain " + (k - 1) + " validate: " + e + causes(e));
      }
    }
    // Every token, not only the last of each chain: signature, TSA certificate at genTime (BC's
    // TimeStampToken.validate) and a path to the anchors at genTime.
    int tokens = 0;
    for (int c = 0; c < chains.length; c++) {
      ArchiveTimeStamp[] stamps = chains[c].getArchiveTimestamps();
      for (int s = 0; s < stamps.length; s++) {
        tokens++;
        ERSArchiveTimeStamp ats = new ERSArchiveTimeStamp(stamps[s], digests);
        try {
          ats.validate(signerVerifier(ats.getSigningCertificate()));
        } catch (Exception e) {
          signed = false;
          failures.add("token " + c + "." + s + ": " + e + causes(e));
        }
        try {
          trustPath(ats.getTimeStampToken(), anchors, ats.getGenTime());
        } catch (Exception e) {
          trusted = false;
          failures.add("token " + c + "." + s + " path: " + e);
        }
      }
    }
    return "{\"present\":" + present + ",\"chained\":" + chained + ",\"signed\":" + signed
        + ",\"trusted\":" + trusted + ",\"chains\":"
        + chains.length + ",\"tokens\":" + tokens + ",\"failures\":" + strings(failures) + "}";
  }

  private static SignerInformationVerifier signerVerifier(X509CertificateHolder cert)
      throws Exception {
    if (cert == null) {
      throw new IllegalArgumentException("the token carries no signer certificate");
    }
    return new JcaSimpleSignerInfoVerifierBuilder().build(cert);
  }

  private static void trustPath(TimeStampToken token, List<X509Certificate> anchors, Date when)
      throws Exception {
    JcaX509CertificateConverter convert = new JcaX509CertificateConverter();
    List<X509Certificate> carried = new ArrayList<>();
    for (X509CertificateHolder h : token.getCertificates().getMatches(null)) {
      carried.add(convert.getCertificate(h));
    }
    Set<TrustAnchor> trust = new HashSet<>();
    for (X509Certificate a : anchors) {
      trust.add(new TrustAnchor(a, null));
    }
    X509CertSelector target = new X509CertSelector();
    target.setCertificate(convert.getCertificate(
        (X509CertificateHolder) token.getCertificates().getMatches(token.getSID()).iterator()
            .next()));
    PKIXBuilderParameters params = new PKIXBuilderParameters(trust, target);
    params.addCertStore(CertStore.getInstance("Collection",
        new CollectionCertStoreParameters(carried)));
    params.setRevocationEnabled(false);
    params.setDate(when);
    CertPathBuilder.getInstance("PKIX").build(params);
  }

  private static String dss(String doc, String er, Date at, CommonCertificateVerifier verifier) {
    DefaultEvidenceRecordValidator validator =
        DefaultEvidenceRecordValidator.fromDocument(new FileDocument(er));
    validator.setDetachedContents(List.of(new FileDocument(doc)));
    validator.setCertificateVerifier(verifier);
    validator.setValidationTime(at);
    Reports reports = validator.validateDocument();
    SimpleReport report = reports.getSimpleReport();
    DiagnosticData diagnostic = reports.getDiagnosticData();
    String id = report.getFirstEvidenceRecordId();
    EvidenceRecordWrapper wrapper = diagnostic.getEvidenceRecordById(id);
    int objects = 0;
    boolean covered = true;
    for (XmlDigestMatcher m : wrapper.getDigestMatchers()) {
      if (m.getType() == DigestMatcherType.EVIDENCE_RECORD_ARCHIVE_OBJECT) {
        objects++;
        covered &= m.isDataFound() && m.isDataIntact();
      }
    }
    List<String> timestamps = new ArrayList<>();
    for (TimestampWrapper t : wrapper.getTimestampList()) {
      timestamps.add("{\"id\":" + Oracles.q(t.getId()) + ",\"type\":"
          + Oracles.q(String.valueOf(t.getType())) + Oracles.verdict(
              report.getIndication(t.getId()), report.getSubIndication(t.getId()))
          + ",\"intact\":" + (t.isMessageImprintDataFound() && t.isMessageImprintDataIntact())
          + ",\"signatureValid\":" + t.isSignatureValid()
          + ",\"errors\":" + Oracles.messages(report.getAdESValidationErrors(t.getId())) + "}");
    }
    return "{\"id\":" + Oracles.q(id)
        + Oracles.verdict(report.getIndication(id), report.getSubIndication(id))
        + ",\"covered\":" + (covered && objects > 0) + ",\"archiveObjects\":" + objects
        + ",\"structurallyValid\":" + wrapper.isStructuralValidationValid()
        + ",\"structuralMessages\":" + strings(wrapper.getStructuralValidationMessages())
        + ",\"errors\":" + Oracles.messages(report.getAdESValidationErrors(id))
        + ",\"warnings\":" + Oracles.messages(report.getAdESValidationWarnings(id))
        + ",\"timestamps\":[" + String.join(",", timestamps) + "]}";
  }

  static List<X509Certificate> readPem(String path) throws Exception {
    List<X509Certificate> out = new ArrayList<>();
    try (InputStream in = new FileInputStream(path)) {
      for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
        out.add((X509Certificate) c);
      }
    }
    return out;
  }

  private static String causes(Throwable e) {
    StringBuilder b = new StringBuilder();
    for (Throwable c = e.getCause(); c != null && c != c.getCause(); c = c.getCause()) {
      b.append(" <- ").append(c);
    }
    return b.toString();
  }

  private static String strings(List<String> list) {
    List<String> out = new ArrayList<>();
    for (String s : list == null ? List.<String>of() : list) {
      out.add(Oracles.q(s));
    }
    return "[" + String.join(",", out) + "]";
  }
}
